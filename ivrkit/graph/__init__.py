"""Pictures of a flow: `ivrkit graph`.

- `model`    the flow as nodes and labelled edges (`build_graph`), read by everything below
             and by coverage (`ivrkit.coverage`), with a stable id per edge
- `mermaid`  Mermaid flowchart text (renders on GitHub and in editors)
- `dot`      Graphviz DOT text
- `render`   SVG / PNG by running Graphviz's `dot`, or one line saying how to install it
"""

"""The flow definition: a YAML file (plus its includes) → the immutable, checked `Flow` model.

Engine-side: imports `errors`, `prompts` and `yaml`, never `livekit`, never the clock. The
language is documented in docs/flows.md. The path of a file, module by module:

- `loader`         the public entry: `load_flow` / `check_flow` (and `_text` variants); reads,
                   composes includes, builds, validates, raises or returns every `Issue` at once
- `source`         one YAML file as nodes with positions; the `Reporter` that collects issues
- `spec`           the table of keys a flow may use (read by the builder and by `schema`)
- `values`         typed readers for YAML nodes (durations, DTMF keys, regexes, hook refs…)
- `durations`      "5s" / "250ms" / "2m" → seconds
- `build`          the file level: top keys, includes, the prompts table, flow hooks
- `build_context`  what the file level shares with the state level (`BuildContext`, `BuildInfo`)
- `state_build`    the state level: one `State` and its menu/collect/goto/transfer/… action
- `prompt_build`   prompt nodes → `Prompt`s ("@name" references, parts, lists)
- `conditions`     the safe expression language of `goto` arms (`if: "balance > 100"`)
- `validate`       cross-state checks: unknown states, unreachable states, spin loops, hooks
- `hook_refs`      `module:function` references → callables, at load time (`resolve_hook`)
- `model`          the frozen dataclasses every other part of ivrkit reads (`Flow`, `State`…)
- `schema`         a JSON Schema for editors (`ivrkit schema`), generated from `spec`
"""

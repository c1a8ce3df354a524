"""A flow with every kind of edge, for the graph and coverage tests."""

from __future__ import annotations

EVERY_EDGE = """
flow: every-edge
start: main
error: sorry
defaults: {retries: 2}
states:
  main:
    menu:
      prompt: "1 pin, 2 route, 3 dtmf, 0 agent."
      options: {"1": pin, "2": route, "3": legacy, "0": agent}
      repeat_key: "*"
      on_max_retries: goodbye
  pin:
    collect:
      prompt: "PIN?"
      into: pin
      min_digits: 4
      max_digits: 4
      sensitive: true
      validate: tests.graph.hooks:pin_ok
      confirm: "Press 1 to confirm, 2 to re-enter."
      back_key: "*"
    next: lookup
  lookup:
    run: tests.graph.hooks:lookup
    say: "Done."
    next: route
    on_error: goodbye
  route:
    goto:
      - {if: "pin == '1234'", then: agent}
      - {if: "last_key == '2'", then: legacy}
      - {else: goodbye}
  legacy:
    send_dtmf: "12#"
    next: out
  out:
    dial: "+15550100"
    next: goodbye
  agent: {transfer: "sip:agent@pbx.example.com"}
  goodbye: {say: "Goodbye.", hangup: true}
  sorry: {say: "Sorry.", hangup: true}
"""

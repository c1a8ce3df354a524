"""What the flow tests share: a flow file that uses every key of the language."""

from __future__ import annotations

import textwrap

# Uses every key of the language at least once (tests/flow/test_schema.py checks that, too).
GOOD_FLOW = textwrap.dedent("""\
    flow: acme-bank
    start: main
    python_path: []
    include: []
    defaults: {timeout: 5s, inter_digit_timeout: 3s, retries: 3, terminator: "#", barge_in: true,
               voice: en-us, language: en, hook_timeout: 5s, dtmf_pace: 250ms}
    error: sorry
    prompts:
      welcome: "Welcome to Acme."
      menu: ["@welcome", "For balances press 1, for cards 2, for an agent 0."]
    hooks: {call_start: ivrkit.prompts:template_names, call_end: [ivrkit.prompts:fill]}
    states:
      main:
        menu:
          prompt: "@menu"
          options: {"1": pin, "2": route, "0": agent, "a": out}
          repeat_key: "*"
          back_key: null
          no_input: ["Sorry, I didn't hear a choice.", "Please press a key now."]
          no_match: "That is not a valid choice."
          on_max_retries: goodbye
        timeout: 4s
      pin:
        collect: {prompt: "Enter your PIN.", into: pin, min_digits: 4, max_digits: 4, sensitive: true,
                  pattern: "\\\\d{4}", validate: ivrkit.prompts:template_names,
                  confirm: "You entered {pin}. Press 1 to confirm, 2 to re-enter.", clear_key: "*",
                  back_key: "B", no_input: "Please enter your PIN.", no_match: ["Wrong.", "Still wrong."],
                  on_max_retries: main, confirm_no_input: "Press 1 to confirm.", confirm_no_match: ["Press 1 or 2."]}
        next: balance
        on_error: sorry
      balance:
        run: {hook: ivrkit.prompts:template_names, sets: [balance, tier], timeout: 2s}
        say: "Your balance is {balance}."
        next: route
      route:
        goto: [{if: "balance > 100 and tier == 'gold'", then: vip}, {else: main}]
      vip:
        run: ivrkit.prompts:template_names
        say: [{text: "@ is literal here"}, {silence: 500ms}, {digits: "{pin}"}, "@@home"]
        goto: main
        barge_in: false
      agent:   {transfer: "sip:support@pbx.example.com"}
      agent2:  {transfer: {to: "sip:{caller_number}@pbx", announce: "Connecting.", play_dialtone: true}}
      legacy:  {send_dtmf: "1234#", next: legacy2}
      legacy2: {send_dtmf: {digits: "w9{pin}", pace: 300ms}, next: goodbye}
      out:     {dial: {to: +15550100, trunk: ST_x, timeout: 30s, hold: "Please hold.", bridge: false}, next: legacy}
      out2:    {dial: "+15550101", next: out3}
      out3:
        dial:
          to: "+15550102"
          amd: {into: answered_by, initial_silence: 2500ms, greeting: 1.5s, after_greeting_silence: 800ms,
                total_analysis_time: 5s, min_word_length: 100ms, between_words_silence: 50ms,
                maximum_number_of_words: 3, maximum_word_length: 5s, silence_threshold: 256, wait_for_beep: 30s}
        next: nav
      nav:
        navigate:
          steps: [{listen: 800ms, timeout: 10s}, {send: "1", pace: 200ms}, {pause: 1s}, {expect: tone, timeout: 5s},
                  {expect: {say: [for billing], unexpected: [invalid entry]}}]
          on_fail: agent2
          hold: "One moment."
          bridge: true
          hang_up: false
        next: spoken
      sorry:   {say: "Sorry.", next: out2}
      goodbye: {say: "Goodbye.", hangup: true}
      spoken:
        menu: {prompt: "Say route, or press 2.", options: {"2": {to: route, say: [route, "next step"]}, "3": agent2}}
        input: [dtmf, speech]
        max_attempts: 2
    tts: ivrkit.livekit.tts:EspeakTTS
    stt: ivrkit.prompts:template_names
    dtmf: both
""")

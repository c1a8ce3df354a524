"""`ivrkit console`: a phone in the terminal — the Channel port with the keyboard as keypad.

An adapter like `ivrkit.livekit`: the same `Call` runtime drives it, so what a flow does here it
does on a phone line, with no server and no API key. One concept per module:

- `channel`  `ConsoleChannel`, the adapter (clock and output stream injected: tests run it on a
             `VirtualClock`); a dial reaches `--far-end`'s scripted IVR (`ivrkit.far_end`) or silence
- `view`     what is printed: states, prompts, keys (masked conservatively), collect results
- `audio`    prompts spoken with the offline voice to the sound card and/or a call recording
- `script`   the key-script language of `--keys "1,wait 3s,1234#,hangup"`
- `inputs`   where keys come from: keyboard (cbreak), stdin lines, a key script
- `term`     terminal mode and escape sequences
- `cli`      `add_console_parser` / `ConsoleOptions` / `run_console` — the command itself

`python -m ivrkit.console [FLOW] [--keys ...]` runs the command without the main CLI.
"""

from ivrkit.console.channel import CONSOLE_CALLER, ConsoleChannel
from ivrkit.console.cli import ConsoleOptions, add_console_parser, main, run_console

__all__ = ["CONSOLE_CALLER", "ConsoleChannel", "ConsoleOptions", "add_console_parser", "main", "run_console"]

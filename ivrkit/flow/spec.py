"""The keys a flow file may use, in one table that both the loader and the JSON Schema read.

Why a table: the loader's "unknown key (did you mean …)" check and `ivrkit schema` must agree,
or editors would complete keys the loader rejects. Both derive from `SECTIONS`, so they cannot
drift; a test checks the generated schema against this table and the loader.

Each key has a value type from a small vocabulary (`ValueType`) that the schema module maps
to JSON Schema and the builder maps to a parser.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from ivrkit.flow.model import InputMode, Settings
from ivrkit.voice.amd import AmdSettings

ValueType = Literal[
    "string", "identifier", "state", "state_or_null", "prompt", "prompts", "prompt_table",
    "duration", "int", "bool", "dtmf_key", "options", "hook", "hook_list", "hook_spec",
    "goto", "string_list", "transfer", "send_dtmf", "dial", "menu", "collect", "states",
    "settings", "hooks", "regex", "condition", "amd", "navigate", "nav_steps", "expect", "input_list",
    "dtmf_mode",
]


@dataclass(frozen=True, slots=True)
class Key:
    """One key. `default` / `example`: text for the generated reference in docs/flows.md, only
    where `ivrkit.flow.reference` cannot derive them (from the model's defaults, the type)."""

    name: str
    type: ValueType
    doc: str
    required: bool = False
    default: str | None = None
    example: str | None = None


_SETTINGS_TYPES: dict[str, tuple[ValueType, str, str]] = {  # name -> (type, meaning, example)
    "timeout": ("duration", "first-digit (no-input) timeout, from the end of the prompt", "8s"),
    "inter_digit_timeout": ("duration", "time allowed between two keys of a collect", "4s"),
    "retries": ("int", "no-input/no-match attempts before on_max_retries", "2"),
    "terminator": ("dtmf_key", "key that ends a collect early; null for none", "null"),
    "barge_in": ("bool", "a key stops the playing prompt (switch off for disclaimers)", "false"),
    "voice": ("string", "TTS voice", "en-us"),
    "language": ("string", "prompt language", "en"),
    "hook_timeout": ("duration", "time limit for hooks run in this state", "2s"),
    "dtmf_pace": ("duration", "gap between keys sent by send_dtmf", "300ms"),
    "input": ("input_list", "how a menu or collect may be answered: dtmf (keys), speech (spoken words or digits), "
              "or both", "[dtmf, speech]"),
    "max_attempts": ("int", "no-input and no-match together before on_max_retries (beside each one's own `retries`)",
                     "3"),
}
SETTINGS_KEYS: tuple[Key, ...] = tuple(
    Key(f.name, _SETTINGS_TYPES[f.name][0], _SETTINGS_TYPES[f.name][1], example=_SETTINGS_TYPES[f.name][2])
    for f in fields(Settings)
)  # KeyError here at import = a Settings field was added without a type: add it above.

TOP_KEYS: tuple[Key, ...] = (
    Key("flow", "string", "name of the flow (default: the file name)", default="the file name", example="acme-bank"),
    Key("start", "state", "the state every call begins in", required=True),
    Key("python_path", "string_list", "folders (relative to this file) that hooks are imported from", example="[../hooks]"),
    Key("include", "string_list", "other files (relative to this file) whose states and prompts merge in",
        example="[common.yaml]"),
    Key("defaults", "settings", "settings for every state; a state may override each"),
    Key("error", "state", "state entered when a hook fails (default: apology and hang-up)",
        default="built-in apology, hang up", example="sorry"),
    Key("prompts", "prompt_table", "reusable prompts; refer to one as \"@name\"", example='{goodbye: "Goodbye."}'),
    Key("hooks", "hooks", "hooks run at call start and end"),
    Key("tts", "hook", "module:factory returning a livekit-agents TTS for this flow's prompts "
        "(default: the worker's --tts, else the offline eSpeak NG voice)",
        default="the worker's --tts, else eSpeak NG", example="livekit.plugins.cartesia:TTS"),
    Key("dtmf", "dtmf_mode", "how callers' keys arrive: rfc4733 (telephone-events, what LiveKit SIP decodes), "
        "inband (DTMF tones in the caller's audio, for trunks that send no RFC 4733), or both (each press once)",
        default="the worker's --dtmf, else rfc4733", example="inband"),
    Key("stt", "hook", "module:factory returning a streaming livekit-agents STT that hears the caller in states that "
        "take speech (default: the worker's --stt, else the offline pocketsphinx recogniser)",
        default="the worker's --stt, else pocketsphinx", example="livekit.plugins.deepgram:STT"),
    Key("states", "states", "the states, by name", required=True),
)
INCLUDE_KEYS: tuple[Key, ...] = tuple(k for k in TOP_KEYS if k.name in ("python_path", "include", "prompts", "states"))
HOOKS_KEYS: tuple[Key, ...] = (
    Key("call_start", "hook_list", "run when the call is answered; may return variables"),
    Key("call_end", "hook_list", "run after the call ended (hang-up, transfer, error)"),
)
ACTION_KEYS: tuple[Key, ...] = (
    Key("menu", "menu", "single key choice"),
    Key("collect", "collect", "several digits into a variable"),
    Key("goto", "goto", "a state name, or a list of {if: condition, then: state} ending in {else: state}",
        example="[{if: \"open\", then: main}, {else: closed}]"),
    Key("transfer", "transfer", "transfer the call (SIP URI or tel:)", example='"sip:agents@pbx.example.com"'),
    Key("send_dtmf", "send_dtmf", "send keys to the other side, e.g. to drive a legacy IVR", example='"ww1234#"'),
    Key("dial", "dial", "dial out", example='"+15550100"'),
    Key("navigate", "navigate", "drive the dialled party's IVR: listen for its prompts, send keys (below)"),
)
STATE_KEYS: tuple[Key, ...] = (
    Key("run", "hook_spec", "a hook run on entry: module:function or {hook, sets, timeout}"),
    Key("say", "prompt", "a prompt played on entry, before the action"),
    *ACTION_KEYS,
    Key("hangup", "bool", "hang up after say/run (or after send_dtmf/dial)"),
    Key("next", "state", "the state that follows"),
    Key("on_error", "state", "where to go when this state's hook fails (overrides `error`)", default="the flow's `error`"),
    *SETTINGS_KEYS,
)
MENU_KEYS: tuple[Key, ...] = (
    Key("prompt", "prompt", "what the caller hears", required=True),
    Key("options", "options", "DTMF key (quoted!) -> state, or -> {to: state, say: [words]} to be chosen by "
        "speech too", required=True, example='{"1": {to: billing, say: [billing, bills]}, "0": agent}'),
    Key("repeat_key", "dtmf_key", "key that replays the menu"),
    Key("back_key", "dtmf_key", "key that goes back to the previous menu"),
    Key("no_input", "prompts", "prompt(s) after a timeout; a list escalates"),
    Key("no_match", "prompts", "prompt(s) after a key with no option; a list escalates"),
    Key("on_max_retries", "state", "where to go after `retries` failures", default="the error path"),
)
COLLECT_KEYS: tuple[Key, ...] = (
    Key("prompt", "prompt", "what the caller hears", required=True),
    Key("into", "identifier", "variable the digits are stored in", required=True, example="account"),
    Key("min_digits", "int", "fewest digits accepted"),
    Key("max_digits", "int", "most digits; reaching it ends input at once"),
    Key("sensitive", "bool", "mask the digits in every log and trace"),
    Key("pattern", "regex", "regular expression the whole input must match", example='"\\\\d{4}"'),
    Key("validate", "hook", "hook(ctx, digits) -> bool"),
    Key("confirm", "prompt", "read back and ask 1 to confirm, 2 to re-enter",
        example='["You entered", {digits: "{pin}"}, ". Press 1 to confirm, 2 to re-enter."]'),
    Key("confirm_no_input", "prompts", "prompt(s) after silence at the confirm prompt (default: no_input)"),
    Key("confirm_no_match", "prompts", "prompt(s) after a key other than 1 or 2 at the confirm prompt (default: no_match)"),
    Key("clear_key", "dtmf_key", "key that clears the digits typed so far"),
    Key("back_key", "dtmf_key", "key that goes back to the previous menu"),
    Key("no_input", "prompts", "prompt(s) after a timeout; a list escalates"),
    Key("no_match", "prompts", "prompt(s) after too-short or invalid input"),
    Key("on_max_retries", "state", "where to go after `retries` failures", default="the error path"),
)
OPTION_KEYS: tuple[Key, ...] = (
    Key("to", "state", "the state this option leads to", required=True, example="billing"),
    Key("say", "string_list", "words or phrases a caller may speak to choose it (with `input: [dtmf, speech]`)",
        example="[billing, bills, invoice]"),
)
RUN_KEYS: tuple[Key, ...] = (
    Key("hook", "hook", "module:function", required=True),
    Key("sets", "string_list", "variables the hook may set (for template checks)", example="[balance, tier]"),
    Key("timeout", "duration", "time limit (default: hook_timeout)", default="`hook_timeout`", example="2s"),
)
TRANSFER_KEYS: tuple[Key, ...] = (
    Key("to", "string", "SIP URI or tel: number; may hold {templates}", required=True, example='"sip:agents@pbx.example.com"'),
    Key("announce", "prompt", "played to the caller before the transfer"),
    Key("play_dialtone", "bool", "play a dial tone while transferring"),
)
SEND_DTMF_KEYS: tuple[Key, ...] = (
    Key("digits", "string", "0-9 * # A-D, w = 0.5 s pause; may hold {templates}", required=True, example='"ww{account}#"'),
    Key("pace", "duration", "gap between keys (default: dtmf_pace)", default="`dtmf_pace`", example="300ms"),
)
DIAL_KEYS: tuple[Key, ...] = (
    Key("to", "string", "number or SIP URI to dial", required=True, example='"+15550100"'),
    Key("trunk", "string", "outbound trunk id", example="ST_xxx"),
    Key("timeout", "duration", "how long to ring", example="45s"),
    Key("amd", "amd", "answering-machine detection on the answer: true (Asterisk's defaults) or a mapping (below)",
        default="off", example="true"),
    Key("hold", "prompt", "played to the caller, looping, while it rings (and AMD listens)", example="{audio: hold.wav}"),
    Key("bridge", "bool", "once answered, the caller and the far end hear each other (audio only, never keys)",
        default="false", example="true"),
)
_AMD = AmdSettings()
AMD_KEYS: tuple[Key, ...] = (
    Key("into", "identifier", "variable for the outcome: human, machine, silence or unsure; its cause goes in <into>_cause",
        default='"amd"', example="answered_by"),
    Key("initial_silence", "duration", "silence before any word: longer is `silence`", default=f"{_AMD.initial_silence}ms"),
    Key("greeting", "duration", "voice in the greeting: more is `machine`", default=f"{_AMD.greeting}ms"),
    Key("after_greeting_silence", "duration", "silence after the greeting began: this much is `human`",
        default=f"{_AMD.after_greeting_silence}ms"),
    Key("total_analysis_time", "duration", "no decision by then is `unsure`", default=f"{_AMD.total_analysis_time}ms"),
    Key("min_word_length", "duration", "voice in a row that counts as a word", default=f"{_AMD.min_word_length}ms"),
    Key("between_words_silence", "duration", "silence that ends a word", default=f"{_AMD.between_words_silence}ms"),
    Key("maximum_number_of_words", "int", "this many words is `machine`", default=str(_AMD.maximum_number_of_words)),
    Key("maximum_word_length", "duration", "one word this long is `machine`", default=f"{_AMD.maximum_word_length}ms"),
    Key("silence_threshold", "int", "a 20 ms frame whose mean absolute 16-bit sample is below this is silence",
        default=str(_AMD.silence_threshold)),
    Key("wait_for_beep", "duration", "after `machine`, wait up to this long for the voicemail beep; <into>_beep "
        "says if it came", default="no wait", example="30s"),
)
NAVIGATE_KEYS: tuple[Key, ...] = (
    Key("steps", "nav_steps", "the steps, in order (below)", required=True,
        example='[{listen: 800ms}, {send: "1"}, {listen: 800ms}, {send: "{account}#"}]'),
    Key("on_fail", "state", "where to go when a listen/expect step times out", default="the error path"),
    Key("hold", "prompt", "played to the caller, looping, while the steps run", example="{audio: hold.wav}"),
    Key("bridge", "bool", "after the last step, the caller and the far end hear each other (audio only, never keys)",
        default="false", example="true"),
    Key("hang_up", "bool", "when the steps are over (done or failed), hang up the dialled leg; not with bridge",
        default="false", example="true"),
)
NAV_STEP_KEYS: tuple[Key, ...] = (
    Key("listen", "duration", "wait until the far end has spoken, then been silent this long (its prompt ended)",
        example="800ms"),
    Key("send", "string", "keys to send (0-9 * # A-D, w = 0.5 s pause); may hold {templates}",
        example='"{account}#"'),
    Key("pause", "duration", "wait this long", example="2s"),
    Key("expect", "expect", "wait for the far end's speech or a tone to begin (speech | tone), or for it to say "
        "certain words (below; needs a recogniser)", example="{say: [for billing, main menu]}"),
    Key("timeout", "duration", "listen/expect: fail (on_fail) after this long", default="10s"),
    Key("pace", "duration", "send: gap between keys (default: dtmf_pace)", default="`dtmf_pace`", example="300ms"),
)
EXPECT_KEYS: tuple[Key, ...] = (
    Key("say", "string_list", "phrases of the far end's prompt to wait for: one heard passes the step", required=True,
        example="[for billing, main menu]"),
    Key("unexpected", "string_list", "phrases that fail the step at once (on_fail; the phrase is in "
        "`navigate_heard`)", default="none", example="[invalid entry, please hold]"),
)
GOTO_ARM_KEYS: tuple[Key, ...] = (
    Key("if", "condition", "a condition on variables", example='"balance > 100 and tier == \'gold\'"'),
    Key("then", "state", "state to go to when it holds"),
    Key("else", "state", "state to go to otherwise (the last arm)"),
)
PROMPT_PART_KEYS: tuple[Key, ...] = (
    Key("text", "string", "text to speak (literal: no @ reference); may hold {templates}", example='"Your balance is {balance}."'),
    Key("audio", "string", "audio file, relative to the flow file", example="audio/welcome.wav"),
    Key("digits", "string", "digits spoken one by one; may hold {templates}", example='"{reference}"'),
    Key("silence", "duration", "a pause", example="500ms"),
)

SECTIONS: dict[str, tuple[Key, ...]] = {
    "top": TOP_KEYS,
    "include": INCLUDE_KEYS,
    "defaults": SETTINGS_KEYS,
    "hooks": HOOKS_KEYS,
    "state": STATE_KEYS,
    "menu": MENU_KEYS,
    "option": OPTION_KEYS,
    "collect": COLLECT_KEYS,
    "run": RUN_KEYS,
    "transfer": TRANSFER_KEYS,
    "send_dtmf": SEND_DTMF_KEYS,
    "dial": DIAL_KEYS,
    "amd": AMD_KEYS,
    "navigate": NAVIGATE_KEYS,
    "nav_step": NAV_STEP_KEYS,
    "expect": EXPECT_KEYS,
    "goto_arm": GOTO_ARM_KEYS,
    "prompt_part": PROMPT_PART_KEYS,
}
ACTIONS: frozenset[str] = frozenset(k.name for k in ACTION_KEYS)
SETTING_NAMES: frozenset[str] = frozenset(k.name for k in SETTINGS_KEYS)
DTMF_KEYS = "0123456789*#ABCD"
INPUT_MODES: tuple[InputMode, ...] = ("dtmf", "speech")
BUILTIN_VARIABLES: frozenset[str] = frozenset({"caller_number", "called_number", "call_id", "last_key"})


def key_names(section: str) -> tuple[str, ...]:
    return tuple(k.name for k in SECTIONS[section])

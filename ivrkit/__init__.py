"""ivrkit: phone menus (IVR) written as YAML, run as a transitions state machine on LiveKit.

The public engine API. Adapters (`ivrkit.livekit`, `ivrkit.console`) are imported from their
own modules: importing `ivrkit` never imports LiveKit.
"""

from ivrkit.call import Call, CallResult
from ivrkit.channel import CallerInfo, Channel, Hangup, Key, Listen, PromptEnded, Speech, SpeechStarted
from ivrkit.clock import Clock, LoopClock
from ivrkit.digits import CollectResult, DigitCollector, EndReason
from ivrkit.errors import (
    CallError,
    ChannelError,
    FlowError,
    FlowLoadError,
    FlowValidationError,
    HookError,
    Issue,
    IvrkitError,
    SpeechError,
)
from ivrkit.flow.loader import CheckResult, check_flow, load_flow, load_flow_text
from ivrkit.flow.model import Flow, State
from ivrkit.hooks import HookContext, Hooks
from ivrkit.machine import FlowMachine
from ivrkit.prompts import FilledPrompt, Prompt
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock
from ivrkit.trace import Trace, TraceEvent

__version__ = "0.1.0"

__all__ = [
    "Call",
    "CallError",
    "CallResult",
    "CallerInfo",
    "Channel",
    "ChannelError",
    "CheckResult",
    "Clock",
    "CollectResult",
    "DigitCollector",
    "EndReason",
    "FakeChannel",
    "FilledPrompt",
    "Flow",
    "FlowError",
    "FlowLoadError",
    "FlowMachine",
    "FlowTester",
    "FlowValidationError",
    "Hangup",
    "HookContext",
    "HookError",
    "Hooks",
    "Issue",
    "IvrkitError",
    "Key",
    "Listen",
    "LoopClock",
    "Prompt",
    "PromptEnded",
    "Speech",
    "SpeechError",
    "SpeechStarted",
    "State",
    "Trace",
    "TraceEvent",
    "VirtualClock",
    "__version__",
    "check_flow",
    "load_flow",
    "load_flow_text",
]

"""The per-call runtime: one caller walking through one flow.

A `Call` is the `transitions` model of its flow's shared `FlowMachine` and the only consumer of
one event queue. Into the queue go the channel's events (`Key`, `PromptEnded`, `Hangup`, via
`channel.connect`), its timers' deliveries and the outcome of its one background task (a hook, a
transfer, a dial, DTMF sending). Handlers never await playout or user code: they start something
and return, so a key or a hang-up is handled the moment it is read, in the order the adapter
emitted it. A handler returns the `Move` to make next (or None: the call now waits); `_settle`
makes the moves, one after another, and delivers observer notifications in between.

A state runs in a fixed order: `run` hook → `say` → its action (menu, collect, goto, transfer,
send_dtmf, dial, hangup) → `next` (or hang up when there is none). The parts this drives:
`Keys` (keypad policy), `Jobs` run by `Background` (hooks, channel actions), `Player` (the
playing prompt), `Timer` (no-input) and `Recorder` (trace, masking, observers).

Errors never end the call abruptly: a hook that raises, runs past its limit or returns garbage,
a failed transfer/dial/DTMF send, or a runtime guard (more than `MAX_HOPS` states in a row
without waiting for the caller) logs flow/state/file:line, traces an `error`, and goes to the
state's `on_error`, else the flow's `error_state`, else the built-in "Sorry, something went
wrong." + hang up. An error again before the caller was next waited on (or inside the error
state) goes straight to the built-in one, so error paths cannot loop.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ivrkit.call.background import Background
from ivrkit.call.events import CollectorTimer, EndedBy, Event, Move, Phase, Stop, TaskDone, TimerFired
from ivrkit.call.inbox import Inbox
from ivrkit.call.keys import Arrival, Decision, End, Fail, Keys, Reprompt, Validate
from ivrkit.call.listen import Answered
from ivrkit.call.navigate import Navigated
from ivrkit.call.player import Player
from ivrkit.call.recorder import NO_HOOKS, MetricsSink, Recorder
from ivrkit.call.speech import MAX_UTTERANCE, Ears, listen_request
from ivrkit.call.tasks import Jobs, hook_outcome
from ivrkit.call.timer import Timer, queued_schedule
from ivrkit.channel import DTMF_KEYS, Channel, Hangup, Key, PromptEnded, Speech, SpeechStarted
from ivrkit.digits import CollectResult, EndReason
from ivrkit.errors import CallError
from ivrkit.flow.model import Settings, State
from ivrkit.hooks import Hooks, run_limited
from ivrkit.machine import BUILTIN_ERROR, INITIAL, FlowMachine
from ivrkit.prompts import Prompt, fill
from ivrkit.trace import Trace

log = logging.getLogger("ivrkit.call")

#: States entered in a row without waiting for the caller before the call takes the error path.
MAX_HOPS = 50
#: Upper bound for our own channel actions at the end of a call (hang-up, close), clock seconds.
END_ACTION_LIMIT = 5.0
SORRY = Prompt.text("Sorry, something went wrong. Please call again later.", "<built-in>")

_BUILTIN_STATE = State(name=BUILTIN_ERROR, where="<built-in>", settings=Settings(barge_in=False), hangup=True)
#: Phases in which a prompt plays that a key may cut short (a tuple: `in` finds a member by
#: identity, where a set would call `Enum.__hash__`, Python code, on every key).
_BARGEABLE = (Phase.PROMPT, Phase.SAY, Phase.ANNOUNCE)
#: The members a key reads, as module constants: on CPython 3.11 every `Phase.X` goes through
#: the attribute hook `EnumType.__getattr__` installs (~70 ns, ten times a global), and a menu
#: key read a dozen of them (bench/keypress.py, issue 16). Elsewhere `Phase.X` reads better.
_PROMPT, _INPUT, _ENDED = Phase.PROMPT, Phase.INPUT, Phase.ENDED
_USE, _TYPED_AHEAD = Arrival.USE, Arrival.TYPED_AHEAD


@dataclass(frozen=True, slots=True)
class CallResult:
    ended_by: EndedBy
    state: str
    trace: Trace


class Call:
    """One call on one flow. `await call.run()` returns a `CallResult` once the call is over and
    every timer and task it started is gone. It never raises for flow, hook or channel problems
    (those take the error path); cancelling `run()` cleans up, then re-raises."""

    __slots__ = (
        "machine", "flow", "channel", "clock", "variables", "state", "_keys", "_queue", "_phase",
        "_recorder", "_player", "_timer", "_task", "_jobs", "_hops", "_errored", "_ended_by",
        "_started", "_activity", "_draining", "_ears", "_here", "_record", "_stopped_because",
    )

    def __init__(
        self,
        machine: FlowMachine,
        channel: Channel,
        *,
        hooks: Hooks | None = None,
        variables: Mapping[str, Any] | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.machine = machine
        self.flow = machine.flow
        self.channel = channel
        self.clock = channel.clock
        caller = channel.caller
        self.variables: dict[str, Any] = dict(variables or {})
        self.variables.update(caller_number=caller.number, called_number=caller.called_number, call_id=caller.call_id)
        self.state = INITIAL  # set by the machine (the call is its model)
        self._queue = Inbox()
        self._phase = Phase.IDLE
        self._recorder = Recorder(self.clock, hooks or NO_HOOKS, self._secrets, self.flow.name, metrics)
        self._record = self._recorder.record
        #: the `State` of `self.state`, looked up once per move (`_current`), read many times per key
        self._here = State(name=INITIAL, where=self.flow.file)  # call_start hooks run before the start state
        self._keys = Keys(self._recorder, self.variables, machine.sensitive, self.clock,
                         queued_schedule(self.clock, self._post))
        self._player = Player(channel, self._recorder)
        self._ears = Ears(channel, self._recorder)
        self._timer = Timer(self.clock, self._post)
        self._task = Background(self._post)
        self._jobs = Jobs(machine, channel, self.variables, self._recorder, self._task.on_thread)
        self._hops = 0  # states entered since the caller was last waited on
        self._errored = False  # an error since the caller was last waited on
        self._ended_by: EndedBy | None = None
        self._stopped_because = ""  # why `stop` ended the call
        self._started = False
        self._activity = 0
        self._draining = False  # consuming type-ahead keys (keeps key handling iterative)

    @property
    def trace(self) -> Trace:
        return self._recorder.trace

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> CallResult:
        if self._started:
            raise CallError("a Call runs once; create a new Call for the next caller")
        self._started = True
        self.channel.connect(self._post)
        self.machine.attach(self)
        try:
            await self._settle(self._begin())
            queue, recorder = self._queue, self._recorder
            while self._ended_by is None:
                event = queue.take()
                if event is None:
                    event = await queue.get()
                self._activity += 1
                move = self._dispatch(event)
                while move is not None and self._ended_by is None and not recorder.pending:
                    move = self._move_now(move)  # _settle's loop, without a coroutine per event
                if recorder.pending:
                    await self._settle(move)
        except asyncio.CancelledError:
            self._ended_by = self._ended_by or "cancelled"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # let the bounded clean-up below run; re-raised after it
            await self._shutdown()
            raise
        except Exception as exc:  # an engine bug: still end the call cleanly and say so
            mask = self._recorder.mask
            log.error("flow %s state %s: internal error\n%s", self.flow.name, self.state,
                      mask("".join(traceback.format_exception(exc))))  # masked: no PIN in any log
            self._record("error", {"message": mask(f"internal error: {type(exc).__name__}: {exc}"), "where": ""})
            self._ended_by = "error"
        await self._shutdown()
        assert self._ended_by is not None
        return CallResult(self._ended_by, self.state, self.trace)

    def stop(self, reason: str) -> None:
        """End the call from outside the flow, now: the worker is shutting down. Whatever the
        call is doing stops (prompt, timers, a running hook or action), the caller is hung up
        (`channel.hangup`, bounded) rather than left in silence, and the trace ends with
        `call_end {ended_by: stopped, reason}`; `run()` then returns. Safe from any callback on
        the call's loop, before `run()` (it ends as it starts: no state entered, no greeting, no
        call_start hook; call_end hooks run, as for every ending) and after the end (no effect).

        Why an event and not a cancel: a cancelled call ends `cancelled` and does not hang up
        (its caller may still be served elsewhere); a stop is an ending the flow did not choose
        but the caller must hear — it goes through the queue like a hang-up, in order."""
        if not self._started:
            self._stopped_because = reason or "stopped"  # read by `_begin`
        self._post(Stop(reason))

    def _post(self, event: Event) -> None:
        if self._phase is _ENDED:
            if type(event) is Key:
                self._keys.discard(event, "call ended", pending=True)
            return
        self._queue.put(event)

    def _dispatch(self, event: Event) -> Move | None:
        match event:
            case Key():
                if self._ears.speaking and self._ears.key_pressed() and self._keys.collector is not None:
                    self._timer.cancel()  # the entry's own timers take over from the utterance limit
                return self._on_key(event)
            case PromptEnded():  # only the current prompt's end means anything (not one barged in on)
                return self._prompt_done() if self._player.ended(event) else None
            case SpeechStarted():
                return self._on_speech_started(event)
            case Speech():
                return self._on_speech(event)
            case TimerFired():
                return self._no_input() if self._timer.fired(event) else None
            case CollectorTimer(fire=fire):
                result = fire()
                return self._collect_timed_out(result) if result is not None else None
            case TaskDone():
                then = self._task.finish(event)
                if then is None:
                    return None  # a task the call already left behind
                return self._fail(event.error) if event.error is not None else then(event.result)
            case Hangup():
                self._caller_hung_up()
            case Stop(reason=reason):
                self._stopped_because = reason
                self._end("stopped")
        return None

    async def _settle(self, move: Move | None) -> None:
        """Make `move` and the moves it leads to (a loop: chains of states do not recurse), and
        deliver observer notifications in between."""
        while True:
            while move is not None and self._ended_by is None and not self._recorder.pending:
                move = self._move_now(move)
            if not self._recorder.pending:
                return
            await self._recorder.deliver()

    def _begin(self) -> Move | None:
        self._record("call_start", {"caller_number": self.variables["caller_number"],
                                    "called_number": self.variables["called_number"],
                                    "call_id": self.variables["call_id"]})
        if self._stopped_because:  # stopped before it ran: a greeting or a hook now would be cut at once
            self._end("stopped")
            return None
        if self.flow.call_start:
            self._phase = Phase.HOOK
            self._task.start(self._jobs.call_start, self._call_start_done)
            return None
        return Move(self.flow.start, "start")

    def _call_start_done(self, results: list[Any]) -> Move | None:
        for ref, result in zip(self.flow.call_start, results):
            if isinstance(result, Mapping):
                self._jobs.merge(str(ref), result)
            elif result is not None:
                log.warning("flow %s: call_start hook %s returned %s; only a mapping is used",
                            self.flow.name, ref, type(result).__name__)
        return Move(self.flow.start, "start")

    # --- moving between states -----------------------------------------------------------------

    def _move_now(self, move: Move) -> Move | None:
        self._leave_state()
        source = self.state
        try:
            self.machine.go(self, move.dest)
        except CallError as exc:
            if move.dest == BUILTIN_ERROR:
                raise
            return self._fail(exc)
        self._here = self.flow.states.get(self.state) or self._current()
        self._recorder.state = self.state
        self._record("transition", {"from": source, "to": move.dest, "why": move.why})
        return self._enter()

    def _leave_state(self) -> None:
        if self._ears.request is not None:
            self._ears.want(None)
        self._timer.cancel()
        self._keys.leave()
        if self._player.playing is not None:
            self._player.stop()
        self._task.cancel()

    def _current(self) -> State:
        """The `State` of `self.state` (kept in `_here` after each move)."""
        state = self.flow.states.get(self.state)
        if state is not None:
            return state
        if self.state == BUILTIN_ERROR:
            return _BUILTIN_STATE
        return State(name=INITIAL, where=self.flow.file)  # call_start hooks run before the start state

    def _enter(self) -> Move | None:
        state = self._here
        self._keys.enter(state)
        self.channel.sensitive = self._keys.sensitive_now  # the adapter masks keys it logs itself
        self._hops += 1
        self._record("state", {"where": state.where})
        if state.name == BUILTIN_ERROR:
            self._phase = Phase.SORRY
            return self._play(SORRY, barge_in=False)
        if self._hops > MAX_HOPS:
            return self._fail(CallError(
                f"{MAX_HOPS} states in a row without waiting for the caller (does the flow loop?)"))
        if state.run is not None:
            self._phase = Phase.HOOK
            run = state.run
            self._task.start(lambda: self._jobs.hook(run, state), lambda result: self._hook_done(state, result))
            return None
        return self._after_hook(state)

    def _hook_done(self, state: State, result: Any) -> Move | None:
        assert state.run is not None
        try:
            outcome = hook_outcome(result, state.run, state, self.flow.states)
        except Exception as exc:
            return self._fail(exc)
        if isinstance(outcome, str):
            self._record("hook", {"hook": str(state.run), "result": "state", "next": outcome})
            return Move(outcome, f"hook {state.run}")
        if outcome is None:
            self._record("hook", {"hook": str(state.run), "result": "none"})
        else:
            self._jobs.merge(str(state.run), outcome)
        return self._after_hook(state)

    def _after_hook(self, state: State) -> Move | None:
        if state.say is not None:
            self._phase = Phase.SAY
            return self._play(state.say, barge_in=state.settings.barge_in)
        return self._action(state)

    def _action(self, state: State) -> Move | None:
        match state.kind:
            case "menu" | "collect":
                self._keys.visit(state)
                return self._start_input()
            case "goto":
                return self._goto(state)
            case "transfer":
                assert state.transfer is not None
                if state.transfer.announce is not None:
                    self._phase = Phase.ANNOUNCE
                    return self._play(state.transfer.announce, barge_in=state.settings.barge_in)
                self._start_action(state)
                return None
            case "send_dtmf" | "dial" | "navigate":
                self._start_action(state)
                return None
            case "hangup":
                self._end("hangup")
                return None
        if state.next is None:
            self._end("hangup")
            return None
        return Move(state.next, "next")

    def _goto(self, state: State) -> Move | None:
        for arm, branch in enumerate(state.goto, 1):
            if branch.condition is None:
                return Move(branch.target, f"goto {arm}")  # which arm: coverage and readers of the trace
            try:
                ok, problem = branch.condition.evaluate_detailed(self.variables)
            except Exception as exc:
                return self._fail(CallError(f"{branch.where or state.where}: condition failed: {exc}"))
            if problem is not None:  # a type error: this arm is false; say so, the call goes on
                where = branch.where or state.where
                message = self._recorder.mask(problem)
                log.warning("flow %s state %s (%s): %s; the arm is taken as false",
                            self.flow.name, state.name, where, message)
                self._record("condition_error", {"message": message, "where": where})
            if ok:
                return Move(branch.target, f"goto {arm}")
        if state.next:
            return Move(state.next, "goto: no branch matched")
        return self._fail(CallError(f"{state.where}: no goto branch matched and there is no next"))

    def _start_action(self, state: State) -> None:
        self._phase = Phase.ACTION
        self._task.start(lambda: self._jobs.action(state), lambda result: self._action_done(state, result))
        if (hold := _hold(state)) is not None:
            self._play(hold, barge_in=False, hold=True)  # replayed as it ends until the action is done (_prompt_done)

    def _action_done(self, state: State, result: Answered | Navigated | None = None) -> Move | None:
        self._hops = 0
        if isinstance(result, Answered) and state.dial is not None and state.dial.amd is not None:
            self.variables.update(result.variables(state.dial.amd))
            self._record("amd", result.record())
        if isinstance(result, Navigated) and result.heard is not None:
            self.variables["navigate_heard"] = result.heard
        if isinstance(result, Navigated) and not result.ok and state.navigate is not None:
            failed = f"step {result.failed_step}: {result.reason}"
            self.variables["navigate_failed"] = failed
            if state.navigate.on_fail is None:
                return self._fail(CallError(f"{state.where}: navigate {failed}"))
            return Move(state.navigate.on_fail, "navigate failed")
        if state.transfer is not None:
            self._record("transfer_done", {"ok": True})
            self._end("transfer")
            return None
        if state.next is not None:
            return Move(state.next, state.kind)
        self._end("hangup")
        return None

    # --- prompts -------------------------------------------------------------------------------

    def _play(self, prompt: Prompt, *, barge_in: bool, hold: bool = False) -> Move | None:
        state = self._here
        filled = fill(prompt, self.variables, id=self._player.next_id(), state=state.name,
                          sensitive=self.machine.sensitive, barge_in=barge_in,
                          voice=state.settings.voice, language=state.settings.language)
        if hold:
            filled = replace(filled, hold=True)
        try:
            self._player.play(filled)
        except Exception as exc:
            if self.state == BUILTIN_ERROR:
                log.error("flow %s: cannot play the built-in error prompt: %s", self.flow.name, exc)
                self._end("error")
                return None
            return self._fail(exc)
        return None

    def _prompt_done(self) -> Move | None:
        """The current prompt ended, or a key barged in on it: what the phase does next."""
        if self._phase is _PROMPT:  # an input state's prompt: the most common by far
            return self._next_prompt()
        match self._phase:
            case Phase.SAY:
                return self._action(self._here)
            case Phase.ANNOUNCE:
                self._start_action(self._here)
                return None
            case Phase.SORRY:
                self._end("error")
                return None
            case Phase.ACTION:
                hold = _hold(self._here)
                if hold is not None and self._task.running:
                    return self._play(hold, barge_in=False, hold=True)
        return None

    # --- keys ----------------------------------------------------------------------------------

    def _on_key(self, key: Key) -> Move | None:
        arrival = self._keys.arrive(key, waiting=self._phase is _INPUT)
        if arrival is _USE:
            return self._input(key)
        if (arrival is _TYPED_AHEAD and key.digit in DTMF_KEYS and self._player.interruptible
                and self._phase in _BARGEABLE):
            self._player.stop("key")  # barge-in: the key waits in the buffer for the input state
            return self._prompt_done()
        return None

    # --- speech ---------------------------------------------------------------------------------

    def _on_speech_started(self, event: SpeechStarted) -> Move | None:
        if not self._ears.started(event.at):
            return None
        move = self._barge_in_by_voice() if self._phase is Phase.PROMPT else None
        if move is None:
            self._hold()
        return move

    def _on_speech(self, event: Speech) -> Move | None:
        if not self._ears.take(event):
            return None
        if self._phase is Phase.PROMPT:  # a result with no SpeechStarted before it
            move = self._barge_in_by_voice()
            if move is not None:  # typed-ahead keys decided first: they came first
                self._ears.discard(event, "keys typed before it decided")
                return move
        if self._phase is not Phase.INPUT:
            self._ears.discard(event, f"the call is in its {self._phase.value} phase")
            return None
        self._timer.cancel()
        return self._decide(self._keys.said(event.text, self._ears.shown(event.text), event.at))

    def _barge_in_by_voice(self) -> Move | None:
        """The caller speaks over the input state's prompt (listening then means barge-in is on)."""
        self._player.stop("speech")
        self._keys.skip_prompts("speech")
        return self._await_input()

    def _hold(self) -> None:
        """The caller is speaking: the no-input timers wait for the result, up to MAX_UTTERANCE."""
        if self._phase is Phase.INPUT:
            self._keys.hold()
            self._timer.arm(MAX_UTTERANCE)

    def _input(self, key: Key) -> Move | None:
        decision = self._keys.press(key)
        if decision is None or type(decision) is Move:
            return decision  # a move cancels the timer as it leaves the state
        self._timer.cancel()
        return self._decide(decision)

    def _decide(self, decision: Decision) -> Move | None:
        """Carry out what `Keys` decided."""
        match decision:
            case None:
                return None
            case Move():
                return decision
            case Reprompt(first=first):
                self._timer.cancel()
                return self._start_input(first)
            case Validate(ref=ref, digits=digits):
                self._phase = Phase.VALIDATE
                state = self._here
                self._task.start(lambda: self._jobs.hook(ref, state, digits),
                                 lambda ok: self._validated(digits, ok))
                return None
            case Fail(error=error):
                return self._fail(error)
            case End(how=how):
                self._end(how)
                return None
        raise CallError(f"unknown decision {decision!r}")

    def _start_input(self, first: Prompt | None = None) -> Move | None:
        """Input starts or starts again; no timer runs here (a Reprompt cancels it, a move left it)."""
        self._keys.begin(first)
        return self._next_prompt()

    def _next_prompt(self) -> Move | None:
        self._phase = _PROMPT
        barge_in = self._here.settings.barge_in
        prompt = self._keys.next_prompt(barge_in)
        if prompt is not None:
            if self.machine.speech:
                self._listen(now=barge_in)  # speech may cut the prompt only where a key may
            return self._play(prompt, barge_in=barge_in)
        return self._await_input()

    def _listen(self, *, now: bool = True) -> None:
        """Listen for what the current input state takes (`now` False: not yet, not speech)."""
        if not (now and self._here.settings.speech):  # nothing to hear (most states: keys only)
            if self._ears.request is not None:
                self._ears.want(None)
            return
        self._ears.want(listen_request(self._here, confirming=self._keys.confirming,
                                       sensitive=self._keys.sensitive_now))

    def _await_input(self) -> Move | None:
        self._phase = _INPUT
        if self.machine.speech:
            self._listen()
        self._hops = 0
        self._errored = False
        if self._draining:
            return None  # reached again from a key being drained (repeat key): the loop below goes on
        self._draining = True
        try:
            while self._phase is _INPUT and self._ended_by is None:
                key = self._keys.typed_ahead()
                if key is None:
                    break
                move = self._input(key)
                if move is not None:
                    return move
        finally:
            self._draining = False
        if self._phase is _INPUT and self._ended_by is None and not self._keys.listen():
            self._timer.arm(self._here.settings.timeout)
        return None

    def _no_input(self) -> Move | None:
        if self._ears.speaking:  # SpeechStarted without its Speech for MAX_UTTERANCE: silence, in effect
            self._ears.speaking = False
            self._ears.drop = True
            self._keys.end_entry(EndReason.FIRST_DIGIT_TIMEOUT)
        self._record("timeout", {"what": "no_input"})
        return self._decide(self._keys.failed("no_input"))

    def _collect_timed_out(self, result: CollectResult) -> Move | None:
        if result.reason in (EndReason.FIRST_DIGIT_TIMEOUT, EndReason.INTER_DIGIT_TIMEOUT):
            self._record("timeout", {"what": result.reason.value})
        return self._decide(self._keys.collected(result))

    def _validated(self, digits: str, ok: Any) -> Move | None:
        return self._decide(self._keys.validated(ok, digits))

    # --- errors and the end --------------------------------------------------------------------

    def _fail(self, error: BaseException) -> Move | None:
        state = self._here
        where = getattr(error, "where", "") or state.where
        message = self._recorder.mask(f"{type(error).__name__}: {error}")
        log.error("flow %s state %s (%s): %s", self.flow.name, state.name, where, message)
        self._recorder.log_traceback(error, f"flow {self.flow.name} state {state.name}")
        self._record("error", {"message": message, "where": where})
        target = state.on_error or self.flow.error_state
        if self._errored or target is None or target == state.name or state.name == BUILTIN_ERROR:
            target = BUILTIN_ERROR
        self._errored = True
        if state.name == BUILTIN_ERROR:
            self._end("error")
            return None
        return Move(target, "error")

    def _end(self, ended_by: EndedBy) -> None:
        if self._ended_by is None:
            self._ended_by = ended_by

    def _caller_hung_up(self) -> None:
        self._keys.end_entry(EndReason.HANGUP)
        self._end("caller_hangup")

    async def _shutdown(self) -> None:
        ended_by = self._ended_by or "cancelled"
        self._ears.want(None)
        self._keys.end_entry(EndReason.HANGUP if ended_by == "caller_hangup" else EndReason.CANCELLED)
        self._timer.cancel()
        self._player.stop("call ended")
        task = self._task.cancel()
        self._phase = Phase.ENDED
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if ended_by in ("hangup", "error", "stopped"):
            await self._bounded(self.channel.hangup(), "hangup")
        self._keys.discard_buffer("call ended")
        while (event := self._queue.take()) is not None:
            if isinstance(event, Key):
                self._keys.discard(event, "call ended", pending=True)
        self._record("call_end", {"ended_by": ended_by, "reason": self._stopped_because}
                     if ended_by == "stopped" else {"ended_by": ended_by})
        await self._jobs.call_end(self.flow.states.get(self.state) or self.flow.states[self.flow.start])
        await self._recorder.deliver()
        self.trace.close()
        self.machine.detach(self)
        await self._bounded(self.channel.aclose(), "aclose")

    async def _bounded(self, aw: Awaitable[Any], what: str) -> None:
        try:
            await run_limited(aw, clock=self.clock, timeout=END_ACTION_LIMIT)
        except Exception as exc:  # a HookTimeout too
            log.warning("flow %s: channel %s failed: %s", self.flow.name, what, exc)

    # --- masking -------------------------------------------------------------------------------

    def _secrets(self) -> Iterator[str]:
        """What must never appear in a log or trace: sensitive variables and entries."""
        for name in self.machine.sensitive:
            value = self.variables.get(name)
            if value:
                yield str(value)
        yield from self._keys.secrets()

    # --- for harnesses -------------------------------------------------------------------------

    @property
    def prompt_playing(self) -> bool:
        """A prompt was started and has not ended (nor been stopped) yet."""
        return self._player.playing is not None

    @property
    def ended(self) -> bool:
        return self._phase is _ENDED

    @property
    def idle_info(self) -> tuple[int, int, bool]:
        """(activity counter, queued events, hook thread running) — for test harnesses."""
        return self._activity, len(self._queue), self._task.thread is not None

    def thread_future(self) -> asyncio.Future[Any] | None:
        return self._task.thread


def _hold(state: State) -> Prompt | None:
    """What the caller hears, looping, while a dial rings or a navigate runs (None: silence)."""
    if state.dial is not None:
        return state.dial.hold
    return state.navigate.hold if state.navigate is not None else None

"""The call runtime: one caller walking through one flow (`Call`).

One queue, one consumer: everything that happens to a call — a key, a prompt's end, a timer, a
hook's outcome, the caller hanging up — is an event in its queue, handled in order by `Call`.
The parts below each own their state; none of them reaches back into `Call`: they return a
decision, or post an event.

    runtime     `Call`: the queue and its consumer, the order a state runs in, moves between
                states, the error path, the end of the call; `CallResult`
    keys        `Keys`: keypad policy — type-ahead, menu / collect / confirm, retries,
                back / repeat; answers with decisions (`Move`, `Reprompt`, `Validate`, …)
    tasks       `Jobs`: what the background task runs — flow hooks and channel actions
    background  `Background`: the one background task, generation-tagged (`TaskDone`)
    timer       `Timer`: the no-input timer; `queued_schedule`: collector timers via the queue
    speech      `Ears`: what the call listens for and when; speaking holds the timers, a key
                pressed mid-utterance wins (the words' meaning is `Keys.said`)
    player      `Player`: the playing prompt (which one, may a key cut it)
    recorder    `Recorder`: the trace, masking of sensitive digits, observer notifications
    events      the events in the queue, `Move`, `Phase`, `EndedBy`

Keypad behaviour is described in `ivrkit.call.keys`, hooks in `ivrkit.call.tasks`, and the path
of a keypress through all of this in docs/architecture.md.
"""

from ivrkit.call.events import EndedBy
from ivrkit.call.runtime import END_ACTION_LIMIT, MAX_HOPS, SORRY, Call, CallResult

__all__ = ["END_ACTION_LIMIT", "MAX_HOPS", "SORRY", "Call", "CallResult", "EndedBy"]

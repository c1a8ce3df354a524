"""Hook of tests/e2e/sip_flows/hooks.yaml: branch on the SIP attributes LiveKit SIP gives the
call (caller's number `sip.phoneNumber`, dialled number `sip.trunkPhoneNumber`)."""

from __future__ import annotations

from ivrkit.hooks import HookContext

VIP_CALLER = "+15550177"
HOOKS_NUMBER = "+15550003"


def by_caller(ctx: HookContext) -> str | None:
    """`vip` for the VIP caller on the hooks number (both must match), else the state's `next`."""
    if ctx.caller.number == VIP_CALLER and ctx.caller.called_number == HOOKS_NUMBER:
        return "vip"
    return None

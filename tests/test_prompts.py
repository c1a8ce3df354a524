"""prompts.fill: templates filled for playing, masked for the log; text without templates as is."""

from __future__ import annotations

from ivrkit.prompts import MASK, Prompt, PromptPart, fill


def test_text_without_templates_fills_to_itself() -> None:
    prompt = Prompt.text("Main menu. For sales press 1.")
    filled = fill(prompt, {"pin": "4321"}, id=3, state="main", sensitive=frozenset({"pin"}))
    assert filled.parts == prompt.parts and filled.parts[0] is prompt.parts[0]  # frozen: shared, not copied
    assert filled.log_text == "Main menu. For sales press 1." and (filled.id, filled.state) == (3, "main")


def test_templates_are_filled_and_sensitive_values_masked_only_in_the_log() -> None:
    prompt = Prompt((PromptPart("text", "Your PIN {pin}, balance {balance}."), PromptPart("digits", "{pin}"),
                     PromptPart("digits", "{account}"), PromptPart("silence", "0.5")))
    filled = fill(prompt, {"pin": "4321", "balance": 12, "account": "987"}, id=1, state="s",
                  sensitive=frozenset({"pin"}))
    assert [p.value for p in filled.parts] == ["Your PIN 4321, balance 12.", "4321", "987", "0.5"]
    assert filled.log_text == f"Your PIN {MASK}, balance 12. {MASK} 9 8 7 [silence: 0.5]"
    assert "4321" not in filled.log_text


def test_escaped_braces_and_missing_variables() -> None:
    filled = fill(Prompt.text("Press {{1}} for {name}{missing}."), {"name": "sales"}, id=1, state="s")
    assert filled.parts[0].value == filled.log_text == "Press {1} for sales."

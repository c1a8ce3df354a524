// RFC 4733 telephone-event codes for the sixteen DTMF keys, and the mapping from a pressed
// key to what `LocalParticipant.publishDtmf(code, digit)` needs.
//
// Why a module of its own: the code/digit pair is the one thing the dial pad must never get
// wrong (a wrong code is a different key on the phone line), and keeping it pure lets the
// end-to-end test read the very same table the page uses.
// A-D go out lowercase: LiveKit SIP delivers them lowercase and drops uppercase when sending.

/** Key label (as printed on the keypad) -> { code, digit } sent to LiveKit. */
export const DTMF_KEYS = Object.freeze({
  '1': { code: 1, digit: '1' }, '2': { code: 2, digit: '2' }, '3': { code: 3, digit: '3' },
  '4': { code: 4, digit: '4' }, '5': { code: 5, digit: '5' }, '6': { code: 6, digit: '6' },
  '7': { code: 7, digit: '7' }, '8': { code: 8, digit: '8' }, '9': { code: 9, digit: '9' },
  '*': { code: 10, digit: '*' }, '0': { code: 0, digit: '0' }, '#': { code: 11, digit: '#' },
  A: { code: 12, digit: 'a' }, B: { code: 13, digit: 'b' },
  C: { code: 14, digit: 'c' }, D: { code: 15, digit: 'd' },
});

/** Keypad layout, row by row: the classic 4x4 DTMF matrix (A-D in the fourth column). */
export const KEYPAD_ROWS = Object.freeze([
  ['1', '2', '3', 'A'],
  ['4', '5', '6', 'B'],
  ['7', '8', '9', 'C'],
  ['*', '0', '#', 'D'],
]);

/**
 * Map a keyboard `KeyboardEvent.key` (or a keypad label) to its DTMF pair, or null when the
 * key is not a DTMF key. Letters are accepted in either case.
 * @param {string} key
 * @returns {{code: number, digit: string} | null}
 */
export function dtmfForKey(key) {
  if (typeof key !== 'string' || key.length !== 1) return null;
  return DTMF_KEYS[key.toUpperCase()] ?? null;
}

/**
 * The label to show for a received event: A-D shown uppercase like on the keypad.
 * Falls back to the code when the digit string is missing (some senders only set the code).
 * @param {number} code
 * @param {string} digit
 */
export function labelForDtmf(code, digit) {
  if (digit) return digit.length === 1 ? digit.toUpperCase() : digit;
  const hit = Object.entries(DTMF_KEYS).find(([, v]) => v.code === code);
  return hit ? hit[0] : `?${code}`;
}

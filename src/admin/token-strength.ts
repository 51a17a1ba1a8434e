/**
 * Is an admin token strong enough to guard /admin? The token is a bearer credential typed by nobody: it should come
 * from a random generator (`openssl rand -hex 32`), so anything that looks typed by hand is refused when the rules
 * are loaded, before it can guard anything.
 *
 * The estimate is conservative, from the token's length and the character classes it uses: 4 bits a character for
 * hex, hyphens not counted (so 32 hex characters is the minimum; a UUID, 122 random bits, is refused), 6 for
 * base64url (22 characters), more with other symbols. A token of letters only is counted as words (about 2.3 bits a
 * letter, as a Diceware passphrase), and a
 * token that repeats itself, uses a handful of characters, or runs through a sequence (`aaaa…`, `abcabc…`,
 * `0123…`) is refused whatever its length: random tokens of the minimum length fail these checks with a chance of
 * about one in a hundred million or less.
 */

/** The least a token must carry, in bits of entropy. */
export const ADMIN_TOKEN_MIN_BITS = 128;

/** The example placeholder (deploy/k8s/base/secret.example.yaml): any value starting with it is refused. */
export const PLACEHOLDER_PREFIX = 'REPLACE-ME';

/** How to make a good token, for messages. */
export const MAKE_A_TOKEN = 'make one with `openssl rand -hex 32`';

/** Bits a letters-only token is given per letter: it may be words (a Diceware word is ~12.9 bits for ~5.5 letters). */
const WORD_BITS_PER_LETTER = 2.3;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The token's estimated entropy in bits, before the pattern checks (see tokenStrengthProblem). */
export function estimateTokenBits(token: string): number {
  const chars = [...token];
  if (chars.length === 0) return 0;
  if (UUID.test(token)) return 122; // a random UUID: 122 random bits, whatever its 36 characters suggest
  const hex = token.replaceAll('-', '');
  if (/^[0-9a-f]+$/.test(hex) || /^[0-9A-F]+$/.test(hex)) {
    // Hex, perhaps grouped with hyphens (which add nothing).
    return hex.length * (/^[0-9]+$/.test(hex) ? Math.log2(10) : 4);
  }
  if (/^[A-Za-z]+$/.test(token) && looksTyped(token)) return chars.length * WORD_BITS_PER_LETTER;
  let pool = 0;
  if (/[a-z]/.test(token)) pool += 26;
  if (/[A-Z]/.test(token)) pool += 26;
  if (/[0-9]/.test(token)) pool += 10;
  if (/[-_]/.test(token)) pool += 2; // base64url
  if (/[+/]/.test(token)) pool += 2; // base64 ('=' is padding: nothing)
  if (/[^A-Za-z0-9\-_+/=]/.test(token)) pool += 33; // other symbols, spaces, anything else
  return pool <= 1 ? 0 : chars.length * Math.log2(pool);
}

/**
 * Whether letters look typed (words, a CamelCase passphrase) rather than drawn at random: one case only, or case
 * changes as rare as between words. A random mixed-case draw changes case about every other letter (a base64url
 * token with no digit or symbol in it — one in several hundred — must not be mistaken for words).
 */
function looksTyped(letters: string): boolean {
  const upper = letters.replace(/[^A-Z]/g, '').length / letters.length;
  if (upper === 0 || upper === 1) return true;
  let changes = 0;
  for (let i = 1; i < letters.length; i++) {
    if (letters[i]! < 'a' !== letters[i - 1]! < 'a') changes++;
  }
  // Typed: mostly one case (a capital per word), and so few changes of case.
  return (upper < 0.25 || upper > 0.75) && changes / (letters.length - 1) < 0.4;
}

/** Why the token is patterned, or undefined. */
function patternOf(token: string): string | undefined {
  const chars = [...token];
  const n = chars.length;
  if (new Set(chars).size < 6) return 'it uses fewer than 6 different characters';
  for (let p = 1; p <= n / 2; p++) {
    let periodic = true;
    for (let i = p; i < n && periodic; i++) periodic = chars[i] === chars[i - p];
    if (periodic) return 'it repeats itself';
  }
  let steps = 0;
  for (let i = 1; i < n; i++) {
    if (Math.abs(chars[i]!.codePointAt(0)! - chars[i - 1]!.codePointAt(0)!) <= 1) steps++;
  }
  if (n > 1 && steps / (n - 1) > 2 / 3) return 'it is mostly repeated or consecutive characters';
  return undefined;
}

/**
 * Why the token may not guard /admin ("expected …" wording for a RulesError), or undefined when it may. Never
 * includes the token.
 */
export function tokenStrengthProblem(token: string): string | undefined {
  if (token.toUpperCase().startsWith(PLACEHOLDER_PREFIX)) {
    return `expected a token of your own, not the example placeholder (${PLACEHOLDER_PREFIX}…): ${MAKE_A_TOKEN}`;
  }
  const bits = Math.floor(estimateTokenBits(token));
  if (bits < ADMIN_TOKEN_MIN_BITS) {
    return `expected a random token of at least ${ADMIN_TOKEN_MIN_BITS} bits (32 hex characters at the least), but this one has about ${bits}: ${MAKE_A_TOKEN}`;
  }
  const pattern = patternOf(token);
  if (pattern) return `expected a random token, but this one is patterned (${pattern}): ${MAKE_A_TOKEN}`;
  return undefined;
}

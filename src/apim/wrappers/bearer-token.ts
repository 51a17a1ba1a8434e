/**
 * Wrapper: the bearer token. The call goes out with the current token; when APIM answers 401 the token is renewed
 * once and the call sent once more (its body replayed). A 401 to the fresh token is not retried again: it is
 * FreshTokenRefused, a configuration problem at APIM.
 */
import { copyWith } from '../../runtime/copy-with.js';
import { withBearer } from '../../translation/request.js';
import type { ApimCall, ApimDispatch, ApimResult, ApimWrapper } from '../dispatch.js';
import { FreshTokenRefused } from '../errors.js';

/** Where the tokens of one call come from: the APIM application's shared token, or the session's user token. */
export interface TokenSource {
  /** The token to send; undefined when the APIM environment needs none (the open-access sandbox). */
  current(): Promise<string | undefined>;
  /** The token to send when it is at hand now (cached and fresh), without waiting a promise turn; else undefined. */
  ready?(): string | undefined;
  /** A fresh token after APIM refused `rejected`. */
  renew(rejected: string): Promise<string>;
}

export function bearerToken(tokens: TokenSource): ApimWrapper {
  return (next) => (call) => {
    // A cached token goes out at once; otherwise the source is waited for (a fetch, or none in the sandbox).
    const ready = tokens.ready?.();
    if (ready !== undefined) return sendWith(next, call, tokens, ready);
    return tokens.current().then((token) => (token === undefined ? next(call) : sendWith(next, call, tokens, token)));
  };
}

function sendWith(next: ApimDispatch, call: ApimCall, tokens: TokenSource, token: string): Promise<ApimResult> {
  return next({ ...call, request: withBearer(call.request, token) }).then((first) =>
    first.response.statusCode !== 401 ? first : renewedOnce(next, call, tokens, token, first),
  );
}

/** APIM refused `token`: the answer is dumped, the token renewed once and the call sent once more. */
async function renewedOnce(
  next: ApimDispatch,
  call: ApimCall,
  tokens: TokenSource,
  token: string,
  first: ApimResult,
): Promise<ApimResult> {
  await first.response.body.dump();
  const fresh = await tokens.renew(token);
  const second = await next({ ...call, request: withBearer(call.request, fresh) });
  if (second.response.statusCode === 401) {
    await second.response.body.dump();
    throw new FreshTokenRefused();
  }
  return copyWith(second, 'tokenRenewed', true);
}

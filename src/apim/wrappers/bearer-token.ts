/**
 * Wrapper: the bearer token. The call goes out with the current token; when APIM answers 401 the token is renewed
 * once and the call sent once more (its body replayed). A 401 to the fresh token is not retried again: it is
 * FreshTokenRefused, a configuration problem at APIM.
 */
import { withBearer } from '../../translation/request.js';
import type { ApimWrapper } from '../dispatch.js';
import { FreshTokenRefused } from '../errors.js';

/** Where the tokens of one call come from: the APIM application's shared token, or the session's user token. */
export interface TokenSource {
  /** The token to send; undefined when the APIM environment needs none (the open-access sandbox). */
  current(): Promise<string | undefined>;
  /** A fresh token after APIM refused `rejected`. */
  renew(rejected: string): Promise<string>;
}

export function bearerToken(tokens: TokenSource): ApimWrapper {
  return (next) => async (call) => {
    const token = await tokens.current();
    if (token === undefined) return next(call);
    const first = await next({ ...call, request: withBearer(call.request, token) });
    if (first.response.statusCode !== 401) return first;
    await first.response.body.dump();
    const fresh = await tokens.renew(token);
    const second = await next({ ...call, request: withBearer(call.request, fresh) });
    if (second.response.statusCode === 401) {
      await second.response.body.dump();
      throw new FreshTokenRefused();
    }
    return { ...second, tokenRenewed: true };
  };
}

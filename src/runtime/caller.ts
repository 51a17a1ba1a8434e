/** A calling system as the rules configure it: one ASID, its settings, and its APIM application's means of access. */
import type { ConcurrencySlots } from '../apim/concurrency.js';
import type { RateBudget } from '../apim/rate-limiter.js';
import type { ApplicationTokenProvider } from '../auth/application-token.js';
import type { ApimUserTokens } from '../auth/user-token.js';
import type { AsidConfig } from '../rules/schema.js';
import type { CreateRate } from '../sessions/create-rate.js';

export interface Caller {
  asid: string;
  config: AsidConfig;
  /** Application-restricted: token provider of the APIM application; undefined when APIM needs no token (sandbox). */
  tokens: ApplicationTokenProvider | undefined;
  /** User-restricted: token exchange and refresh at the ASID's APIM application. */
  userTokens: ApimUserTokens | undefined;
  /** The resolved API key, for display masked only. */
  apiKey: string | undefined;
  /** The rate limiter of the ASID's APIM application (shared by every ASID mapped to it). */
  limiter: RateBudget;
  /** This ASID's A001 rate (`sessions.a001PerSecondPerAsid`): one bucket per configured ASID. */
  a001Rate: CreateRate;
  /** The APIM application's cap on calls in flight (shared like the limiter). */
  slots: ConcurrencySlots;
  /** The APIM application, as a short tag: its pool partition and its name in metrics. */
  application: string;
  /** The resolved A001 secret, when the ASID authenticates its A001s with one. */
  a001Secret?: string;
}

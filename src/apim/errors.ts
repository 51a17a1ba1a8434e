/** Errors of the APIM side that are not transport failures (those are UpstreamError, in upstream.ts). */

/** APIM answered 401 to a token it had just issued: the application is not approved or not subscribed. */
export class FreshTokenRefused extends Error {
  constructor() {
    super('APIM refused a freshly issued access token');
    this.name = 'FreshTokenRefused';
  }
}

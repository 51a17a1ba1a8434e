// oidc-provider ships no type declarations; the tests use a small part of it (the CIS2 stand-in).
declare module 'oidc-provider' {
  const Provider: any;
  export default Provider;
}

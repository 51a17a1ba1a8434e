/** The sign-in's browser binding cookie (src/signin/binding.ts): names, attributes, reading it back. */
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import {
  bindingCookie,
  bindingCookieName,
  browserSecretOf,
  clearedBindingCookie,
  newBrowserSecret,
  pendingKey,
  secureBinding,
} from '../../src/signin/binding.js';

const STATE = 'x4bJ2f0aQ9m1W8sDkq3rZt5yLp7vNc6uGh0eRwTiYoU';

describe('the sign-in binding cookie', () => {
  it('on https: __Host- prefixed, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, short Max-Age', () => {
    const secret = newBrowserSecret();
    const header = bindingCookie(STATE, secret, true, 600);
    expect(header).toMatch(/^__Host-ers-signin-[A-Za-z0-9_-]{16}=[A-Za-z0-9_-]{43}; /);
    const attrs = header.split('; ').slice(1);
    expect(attrs.sort()).toEqual(['HttpOnly', 'Max-Age=600', 'Path=/', 'SameSite=Lax', 'Secure']);
    expect(header).not.toMatch(/domain=/i);
    expect(clearedBindingCookie(STATE, true)).toBe(
      `${bindingCookieName(STATE, true)}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure`,
    );
  });

  it('on plain HTTP (loopback only): the same without the prefix and Secure', () => {
    const header = bindingCookie(STATE, newBrowserSecret(), false, 600);
    expect(header).toMatch(
      /^ers-signin-[A-Za-z0-9_-]{16}=[A-Za-z0-9_-]{43}; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    expect(clearedBindingCookie(STATE, false)).toMatch(/^ers-signin-[A-Za-z0-9_-]{16}=; Max-Age=0; /);
  });

  it('is secure when the request came over TLS or the callback URL is https', () => {
    const req = (protocol: string) => ({ protocol }) as FastifyRequest;
    expect(secureBinding(req('https'), 'http://127.0.0.1:8080/login/callback')).toBe(true);
    expect(secureBinding(req('http'), 'https://ers-bridge.example.nhs.uk/login/callback')).toBe(true);
    expect(secureBinding(req('http'), 'http://127.0.0.1:8080/login/callback')).toBe(false);
  });

  it('one cookie per sign-in: its name follows the state; each browser gets its own secret', () => {
    expect(bindingCookieName(STATE, false)).not.toBe(bindingCookieName(`${STATE}x`, false));
    expect(newBrowserSecret()).not.toBe(newBrowserSecret());
    expect(pendingKey(STATE, 'a')).not.toBe(pendingKey(STATE, 'b'));
  });

  it('reads back only the sign-in’s own cookie, of its own mode, with a value it could have set', () => {
    const secret = newBrowserSecret();
    const plain = bindingCookieName(STATE, false);
    const host = bindingCookieName(STATE, true);
    expect(browserSecretOf(`a=1; ${plain}=${secret}; b=2`, STATE, false)).toBe(secret);
    expect(browserSecretOf(`${host}=${secret}`, STATE, true)).toBe(secret);
    expect(browserSecretOf(`${plain}=${secret}`, STATE, true), 'a plain cookie never stands in for __Host-').toBe(
      undefined,
    );
    expect(browserSecretOf(`${host}=${secret}`, STATE, false)).toBeUndefined();
    expect(browserSecretOf(`${bindingCookieName('other', false)}=${secret}`, STATE, false)).toBeUndefined();
    expect(browserSecretOf(`${plain}=short`, STATE, false)).toBeUndefined();
    expect(browserSecretOf(`${plain}=${secret}!`, STATE, false)).toBeUndefined();
    expect(browserSecretOf(undefined, STATE, false)).toBeUndefined();
    expect(browserSecretOf('', STATE, false)).toBeUndefined();
    expect(browserSecretOf(`${plain}`, STATE, false)).toBeUndefined();
  });
});

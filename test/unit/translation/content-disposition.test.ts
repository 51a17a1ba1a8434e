import { describe, expect, it } from 'vitest';
import { a006Disposition, filenameOf, safeFilename } from '../../../src/translation/content-disposition.js';

describe('safeFilename', () => {
  it.each([
    ['report.pdf', 'report.pdf'],
    ['a b.pdf', 'a b.pdf'],
    ['a\u0000b', 'ab'],
    ['a\u0001b', 'ab'],
    ['a\u001fb', 'ab'],
    ['a\tb', 'ab'],
    ['a\r\nb', 'ab'],
    ['a\u007fb', 'ab'],
    ['a\u0080b', 'a\u0080b'],
    ['a~b', 'a~b'],
    ['a!b', 'a!b'],
    ['dir/file.pdf', 'dir_file.pdf'],
    ['dir\\file.pdf', 'dir_file.pdf'],
    ['../../etc/passwd', '.._.._etc_passwd'],
    ['  padded.pdf  ', 'padded.pdf'],
    [' lead.pdf', 'lead.pdf'],
    ['trail.pdf ', 'trail.pdf'],
    ['\u00a0nbsp.pdf\u00a0', 'nbsp.pdf'],
    ['\u0000 x \u0000', 'x'],
    ['Zoë 🏥.pdf', 'Zoë 🏥.pdf'],
    ['', ''],
    ['   ', ''],
    ['\u0000\u0001', ''],
  ])('%j → %j', (name, safe) => {
    expect(safeFilename(name)).toBe(safe);
  });

  it('keeps at most 200 characters (code points, not UTF-16 units)', () => {
    expect(safeFilename('a'.repeat(199))).toBe('a'.repeat(199));
    expect(safeFilename('a'.repeat(200))).toBe('a'.repeat(200));
    expect(safeFilename('a'.repeat(201))).toBe('a'.repeat(200));
    expect(safeFilename(`${'b'.repeat(200)}c`)).toBe('b'.repeat(200));
    expect(safeFilename('🏥'.repeat(201))).toBe('🏥'.repeat(200));
    expect(safeFilename('🏥'.repeat(150))).toBe('🏥'.repeat(150));
  });

  it('counts after cleaning and trimming', () => {
    expect(safeFilename(`  ${'\u0000'.repeat(10)}${'a'.repeat(200)}  `)).toBe('a'.repeat(200));
  });
});

describe('filenameOf', () => {
  it('undefined for no header', () => {
    expect(filenameOf(undefined)).toBeUndefined();
  });

  it.each([
    // plain token forms, with and without spaces
    ['attachment; filename=example_attachment.pdf', 'example_attachment.pdf'],
    ['attachment;filename=a.pdf', 'a.pdf'],
    ['attachment;   filename=a.pdf', 'a.pdf'],
    ['attachment; filename = a.pdf', 'a.pdf'],
    ['attachment; filename   =   a.pdf', 'a.pdf'],
    ['attachment;\tfilename=\ta.pdf', 'a.pdf'],
    ['attachment; filename=a.pdf; size=10', 'a.pdf'],
    ['attachment; filename=a.pdf ; size=10', 'a.pdf'],
    ['attachment; filename=a.pdf;size=10', 'a.pdf'],
    ['inline; FILENAME=Upper.PDF', 'Upper.PDF'],
    ['attachment; FileName=Mixed.pdf', 'Mixed.pdf'],
    ['attachment; size=10; filename=late.pdf', 'late.pdf'],
    ['attachment; filename=first.pdf; filename=second.pdf', 'first.pdf'],
    ['attachment; x-y.z=1; filename=after-odd-param.pdf', 'after-odd-param.pdf'],
    ["attachment; a!#$%&'*+.^_`|~b=1; filename=after-token-chars.pdf", 'after-token-chars.pdf'],
    ['attachment; filename=a"b.pdf', 'a"b.pdf'],
    // quoted forms
    ['attachment; filename="letter.pdf"', 'letter.pdf'],
    ['attachment; filename="a b.pdf"', 'a b.pdf'],
    ['attachment; filename="a;b.pdf"', 'a;b.pdf'],
    ['attachment; filename="a=b.pdf"', 'a=b.pdf'],
    ['attachment; filename="say \\"hi\\".pdf"', 'say "hi".pdf'],
    ['attachment; filename="a\\\\b.pdf"', 'a_b.pdf'],
    ['attachment; filename="\\a\\b\\c"', 'abc'],
    ['attachment; filename="x"; size=1', 'x'],
    ['attachment; filename = "spaced.pdf"', 'spaced.pdf'],
    ['attachment; filename="dir/evil.pdf"', 'dir_evil.pdf'],
    ['attachment; filename="  padded.pdf  "', 'padded.pdf'],
    ['attachment; filename="tab\tin.pdf"', 'tabin.pdf'],
    // an unterminated quote is read as a token
    ['attachment; filename="open.pdf', '"open.pdf'],
    ['attachment; filename="a\\"b.pdf', '"a_"b.pdf'],
    ['attachment; filename="a\\\\"b.pdf', 'a_'],
  ])('%s → %j', (header, name) => {
    expect(filenameOf(header)).toBe(name);
  });

  it.each([
    ['attachment'],
    ['inline'],
    [''],
    ['attachment; name=a.pdf'],
    ['attachment; filenames=a.pdf'],
    ['attachment; xfilename=a.pdf'],
    ['attachment filename=a.pdf'],
    ['filename=a.pdf'],
    ['attachment; filename='],
    ['attachment; filename=""'],
    ['attachment; filename="   "'],
    ['attachment; filename=;'],
    ['attachment; filename="\u0001"'],
    ["attachment; filename*=UTF-8''%E9"],
    ["attachment; filename*=ISO-8859-1''caf%E9.pdf"],
  ])('%j → undefined', (header) => {
    expect(filenameOf(header)).toBeUndefined();
  });

  describe('filename* (RFC 8187)', () => {
    it.each([
      ["attachment; filename*=UTF-8''The%20name.pdf", 'The name.pdf'],
      ["attachment; filename*=utf-8''lower.pdf", 'lower.pdf'],
      ["attachment; filename*=Utf-8''mixed.pdf", 'mixed.pdf'],
      ["attachment; filename*=UTF-8'en'with-lang.pdf", 'with-lang.pdf'],
      ["attachment; filename*=UTF-8'en-GB'with-long-lang.pdf", 'with-long-lang.pdf'],
      ["attachment; filename*=UTF-8''caf%C3%A9.pdf", 'café.pdf'],
      ["attachment; filename*=UTF-8''%F0%9F%8F%A5", '🏥'],
      ["attachment; filename*=UTF-8''a'b.pdf", "a'b.pdf"],
      ["attachment; filename*=UTF-8''x", 'x'],
      ["attachment; filename*=UTF-8''dir%2Fevil.pdf", 'dir_evil.pdf'],
      ["attachment; FILENAME*=UTF-8''upper.pdf", 'upper.pdf'],
      ['attachment; filename*="UTF-8\'\'quoted%20ext.pdf"', 'quoted ext.pdf'],
      // filename* wins wherever it is
      ["attachment; filename=plain.pdf; filename*=UTF-8''ext.pdf", 'ext.pdf'],
      ["attachment; filename*=UTF-8''ext.pdf; filename=plain.pdf", 'ext.pdf'],
      // first filename* only
      ["attachment; filename*=UTF-8''one.pdf; filename*=UTF-8''two.pdf", 'one.pdf'],
    ])('%s → %j', (header, name) => {
      expect(filenameOf(header)).toBe(name);
    });

    it.each([
      ["attachment; filename*=ISO-8859-1''caf%E9.pdf; filename=fallback.pdf", 'another charset'],
      ["attachment; filename*=UTF-16''x.pdf; filename=fallback.pdf", 'UTF-16'],
      ["attachment; filename*=UTF-88''x.pdf; filename=fallback.pdf", 'a longer charset'],
      ["attachment; filename*=XUTF-8''x.pdf; filename=fallback.pdf", 'a prefixed charset'],
      ["attachment; filename*=UTF8''x.pdf; filename=fallback.pdf", 'UTF8 with no hyphen'],
      ["attachment; filename*=''x.pdf; filename=fallback.pdf", 'no charset'],
      ["attachment; filename*=%UTF-8''x.pdf; filename=fallback.pdf", 'a charset after a bad character'],
      ["attachment; filename*=UTF-8'x.pdf; filename=fallback.pdf", 'one quote only'],
      ['attachment; filename*=x.pdf; filename=fallback.pdf', 'no quotes'],
      ["attachment; filename*=UTF-8''%E9.pdf; filename=fallback.pdf", 'a bad escape'],
      ["attachment; filename*=UTF-8''%zz.pdf; filename=fallback.pdf", 'a bad hex escape'],
      ["attachment; filename*=UTF-8''%; filename=fallback.pdf", 'a lone %'],
      ['attachment; filename*="UTF-8\'\'a\nb"; filename=fallback.pdf', 'a newline in the value'],
    ])('%s: falls back to filename (%s)', (header, _) => {
      expect(filenameOf(header)).toBe('fallback.pdf');
    });

    it('a filename* that decodes (even to an empty or blank name) is used, not filename', () => {
      expect(filenameOf("attachment; filename*=UTF-8''; filename=fallback.pdf")).toBeUndefined();
      expect(filenameOf("attachment; filename*=UTF-8''%20; filename=fallback.pdf")).toBeUndefined();
      expect(filenameOf("attachment; filename*=UTF-8''%01; filename=fallback.pdf")).toBeUndefined();
    });

    it('an unusable filename* and no filename: undefined', () => {
      expect(filenameOf("attachment; filename*=ISO-8859-1''x.pdf")).toBeUndefined();
      expect(filenameOf("attachment; filename*=UTF-8''%E9")).toBeUndefined();
    });
  });

  describe('RFC 2047 encoded-words in filename (as NHS sandbox sends them)', () => {
    it.each([
      ['attachment; filename="=?UTF-8?Q?The_filenam=C3=A9.pdf?="', 'The filenamé.pdf'],
      ['attachment; filename="=?utf-8?q?lower=c3=a9.pdf?="', 'loweré.pdf'],
      ['attachment; filename="=?UTF-8?q?x=C3=A9?="', 'xé'],
      ['attachment; filename="=?UTF-8?Q?=41=42?="', 'AB'],
      ['attachment; filename="=?UTF-8?Q?a=5Fb?="', 'a_b'],
      ['attachment; filename="=?UTF-8?Q?a__b?="', 'a  b'],
      ['attachment; filename="=?UTF-8?Q?a=ZZb?="', 'a=ZZb'],
      ['attachment; filename="=?UTF-8?Q?a=4?="', 'a=4'],
      ['attachment; filename="=?UTF-8?Q?a=?="', 'a='],
      ['attachment; filename="=?UTF-8?Q?a=4G?="', 'a=4G'],
      ['attachment; filename="=?UTF-8?Q?=4a=4A?="', 'JJ'],
      ['attachment; filename="=?UTF-8?Q?=3d41?="', '=41'],
      ['attachment; filename="=?UTF-8?B?VGhlIGZpbGVuYW3DqS5wZGY=?="', 'The filenamé.pdf'],
      ['attachment; filename="=?UTF-8?b?Y2Fmw6kucGRm?="', 'café.pdf'],
      ['attachment; filename="=?UTF-8?B?X19f?="', '___'],
      ['attachment; filename="=?UTF-8?Q?a?= =?UTF-8?Q?b?="', 'a b'],
      ['attachment; filename="pre =?UTF-8?Q?x?= post"', 'pre x post'],
      ['attachment; filename="=?UTF-8?Q?a?==?UTF-8?B?Yg==?="', 'ab'],
      ['attachment; filename="=?UTF-8?Q??=x"', 'x'],
      ['attachment; filename="=?ISO-8859-1?Q?caf=E9.pdf?="', '=?ISO-8859-1?Q?caf=E9.pdf?='],
      ['attachment; filename="=?XUTF-8?Q?a?="', '=?XUTF-8?Q?a?='],
      ['attachment; filename="=?UTF-8X?Q?a?="', '=?UTF-8X?Q?a?='],
      ['attachment; filename="=?UTF-8?X?a?="', '=?UTF-8?X?a?='],
      ['attachment; filename="=??Q?a?="', '=??Q?a?='],
      ['attachment; filename="=?UTF-8?QQ?a?="', '=?UTF-8?QQ?a?='],
      ['attachment; filename="=?UTF-8?Q?a_b"', '=?UTF-8?Q?a_b'],
      ['attachment; filename==?UTF-8?Q?unquoted_word?=', 'unquoted word'],
    ])('%s → %j', (header, name) => {
      expect(filenameOf(header)).toBe(name);
    });

    it('an encoded-word decoding to nothing but control characters: undefined', () => {
      expect(filenameOf('attachment; filename="=?UTF-8?Q?=01=02?="')).toBeUndefined();
    });

    it('encoded-words are not decoded in filename*', () => {
      expect(filenameOf("attachment; filename*=UTF-8''%3D%3FUTF-8%3FQ%3Fa%3F%3D")).toBe('=?UTF-8?Q?a?=');
    });
  });
});

describe('a006Disposition', () => {
  it.each([
    ['example_attachment.pdf', 'attachment; filename=example_attachment.pdf'],
    ["a!#$%&'*+.^_`|~-Z9.pdf", "attachment; filename=a!#$%&'*+.^_`|~-Z9.pdf"],
    ['x', 'attachment; filename=x'],
    ['  trimmed.pdf  ', 'attachment; filename=trimmed.pdf'],
    ['dir/a.pdf', 'attachment; filename=dir_a.pdf'],
    ['a b.pdf', 'attachment; filename="a b.pdf"'],
    [' a b ', 'attachment; filename="a b"'],
    ['a;b.pdf', 'attachment; filename="a;b.pdf"'],
    ['a,b.pdf', 'attachment; filename="a,b.pdf"'],
    ['(1).pdf', 'attachment; filename="(1).pdf"'],
    ['say "hi".pdf', 'attachment; filename="say \\"hi\\".pdf"'],
    ['"', 'attachment; filename="\\""'],
    ['a\\b.pdf', 'attachment; filename=a_b.pdf'],
    ['a\u0000b c', 'attachment; filename="ab c"'],
    ['', 'attachment; filename=""'],
    ['café.pdf', 'attachment; filename="caf_.pdf"; filename*=UTF-8\'\'caf%C3%A9.pdf'],
    ['é', 'attachment; filename="_"; filename*=UTF-8\'\'%C3%A9'],
    ['a é', 'attachment; filename="a _"; filename*=UTF-8\'\'a%20%C3%A9'],
    ['🏥.pdf', 'attachment; filename="_.pdf"; filename*=UTF-8\'\'%F0%9F%8F%A5.pdf'],
    ["é'()*!~.pdf", "attachment; filename=\"_'()*!~.pdf\"; filename*=UTF-8''%C3%A9%27%28%29%2A!~.pdf"],
    ['é "q".pdf', 'attachment; filename="_ \\"q\\".pdf"; filename*=UTF-8\'\'%C3%A9%20%22q%22.pdf'],
    ['\u0080', 'attachment; filename="_"; filename*=UTF-8\'\'%C2%80'],
    ['~\u00ff', 'attachment; filename="~_"; filename*=UTF-8\'\'~%C3%BF'],
  ])('%j → %s', (name, header) => {
    expect(a006Disposition(name)).toBe(header);
  });

  it('limits the name to 200 characters', () => {
    expect(a006Disposition('a'.repeat(250))).toBe(`attachment; filename=${'a'.repeat(200)}`);
  });

  it.each(['example_attachment.pdf', 'a b.pdf', 'say "hi".pdf', 'café.pdf', "é'()*.pdf", 'Zoë Ŵ — “quoted” 🏥.pdf'])(
    'round-trips through filenameOf: %j',
    (name) => {
      expect(filenameOf(a006Disposition(name))).toBe(name);
    },
  );
});

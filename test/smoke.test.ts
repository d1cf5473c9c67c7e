import { describe, expect, it } from 'vitest';
import { Mac } from 'macslot';

describe('smoke', () => {
  it('parses', () => {
    expect(Mac.parse('0200.5E10.0001').toString()).toBe('02:00:5e:10:00:01');
  });
});

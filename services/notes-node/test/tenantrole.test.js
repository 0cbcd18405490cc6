import assert from 'node:assert/strict';
import { test } from 'node:test';

import { canonicalUID, parseComponentToken, roleName, rolePassword } from '../src/tenantrole.js';

const UID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

test('the role is t_ + the uid without dashes + _ + the component', () => {
  assert.equal(roleName(UID, 'notes-node'), 't_0f1e2d3c4b5a69788796a5b4c3d2e1f0_notes-node');
  assert.equal(roleName(UID.toUpperCase(), 'notes-node'), 't_0f1e2d3c4b5a69788796a5b4c3d2e1f0_notes-node');
});

test('the password is base64url HMAC-SHA256 keyed with the token over the uid', () => {
  // Computed independently (Python's hmac) from the contract.
  assert.equal(rolePassword('tnc_notes-node_c2VjcmV0', UID), 'QbBQvqqslEjszkPvpwnPQZETxU6jRKXIwuZ4AIXAEVk');
  assert.notEqual(rolePassword('tnc_notes-node_c2VjcmV1', UID), rolePassword('tnc_notes-node_c2VjcmV0', UID));
});

test('uids that are not UUIDs and bad component ids are refused', () => {
  for (const uid of ['', 'acme', '0f1e2d3c4b5a69788796a5b4c3d2e1f0', `${UID}x`, "x'; DROP ROLE postgres; --"]) {
    assert.throws(() => canonicalUID(uid), /not a UUID/, uid);
  }
  assert.throws(() => roleName(UID, 'Notes'), /not valid/);
  assert.throws(() => roleName(UID, 'notes_node'), /not valid/);
});

test('component tokens are split at the first underscore after the prefix', () => {
  assert.deepEqual(parseComponentToken('tnc_notes-node_ab_c-d'), { component: 'notes-node' });
  for (const token of ['', 'tnc_', 'tnc_notes-node', 'tnc_notes-node_', 'tnd_notes-node_abc', 'tnc_Notes_abc', 'tnc_notes-node_a b']) {
    assert.equal(parseComponentToken(token), null, token);
  }
});

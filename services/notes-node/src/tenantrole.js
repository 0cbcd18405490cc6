// The tenant's own database role for this component, by the registry's
// contract (services/platform/tenantrole in Go): the registry creates, for
// every (tenant, component), a PostgreSQL role that can reach the
// component's tables in that tenant's schema and nothing else, with a
// password any holder of the component's credential can derive, so no
// password is stored or handed out per tenant.
//
//   role name: "t_" + the tenant's uid without dashes (32 lower-case hex)
//              + "_" + the component id
//   password:  base64url (no padding) of HMAC-SHA256, keyed with the whole
//              component credential (its UTF-8 bytes), of
//              "tenantry-db-password/v1:" + the uid in canonical form
//              (lower-case 8-4-4-4-12)
//
// The role's default search_path is the tenant's schema, then pg_temp.

import { createHmac } from 'node:crypto';

/** What the message of a role's password starts with. */
const PASSWORD_CONTEXT = 'tenantry-db-password/v1:';

const CANONICAL_UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// A component id: a DNS label starting with a letter (registry.proto).
const COMPONENT = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Splits a component credential "tnc_<component>_<secret>". Component ids
 * have no '_', so the component is everything between the first two.
 * Returns null when the token does not have that shape.
 * @param {string} token
 * @returns {{component: string} | null}
 */
export function parseComponentToken(token) {
  const m = /^tnc_([^_]+)_([A-Za-z0-9_-]+)$/.exec(token);
  if (m === null || !COMPONENT.test(m[1])) {
    return null;
  }
  return { component: m[1] };
}

/**
 * Returns the uid in canonical form, or throws if it is not a UUID.
 * @param {string} uid
 */
export function canonicalUID(uid) {
  const lower = String(uid).toLowerCase();
  if (!CANONICAL_UID.test(lower)) {
    throw new Error(`tenant uid ${JSON.stringify(uid)} is not a UUID`);
  }
  return lower;
}

/**
 * The PostgreSQL role of a component in a tenant.
 * @param {string} tenantUID
 * @param {string} component
 */
export function roleName(tenantUID, component) {
  if (!COMPONENT.test(component)) {
    throw new Error(`component id ${JSON.stringify(component)} is not valid`);
  }
  return `t_${canonicalUID(tenantUID).replaceAll('-', '')}_${component}`;
}

/**
 * The password of that role, derived from the component's credential.
 * @param {string} componentToken the whole credential, tnc_...
 * @param {string} tenantUID
 */
export function rolePassword(componentToken, tenantUID) {
  return createHmac('sha256', Buffer.from(componentToken, 'utf8'))
    .update(PASSWORD_CONTEXT + canonicalUID(tenantUID), 'utf8')
    .digest('base64url');
}

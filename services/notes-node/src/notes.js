// Notes: the rules of the example's one resource, and its SQL (table
// node_notes). Every statement is parameterised and names the table
// unqualified: the connection is the tenant's own role, whose search path
// is the tenant's schema (checked once per pool, see pools.js).

import { invalidArgument } from './errors.js';

/** The longest note body, in characters. */
export const MAX_BODY_CHARS = 10_000;
/** Page sizes of ListNotes. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

/**
 * Checks the body of a new note and returns it.
 * @param {unknown} input the parsed request body
 */
export function validateNewNote(input) {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalidArgument('REQUEST_MALFORMED', 'send a JSON object: {"body": "..."}');
  }
  const { body } = input;
  if (typeof body !== 'string') {
    throw invalidArgument('NOTE_BODY_REQUIRED', 'body must be a string');
  }
  if (body.trim() === '') {
    throw invalidArgument('NOTE_BODY_EMPTY', 'body must not be empty');
  }
  if ([...body].length > MAX_BODY_CHARS) {
    throw invalidArgument('NOTE_BODY_TOO_LONG', `body must be at most ${MAX_BODY_CHARS} characters`);
  }
  // PostgreSQL's text cannot hold NUL.
  if (body.includes('\u0000')) {
    throw invalidArgument('NOTE_BODY_INVALID', 'body must not contain NUL characters');
  }
  return { body };
}

/**
 * Reads ListNotes' query: pageSize (1-100, 50 by default) and pageToken
 * (the nextPageToken of the page before).
 * @param {URLSearchParams} params
 */
export function parseListQuery(params) {
  let pageSize = DEFAULT_PAGE_SIZE;
  const size = params.get('pageSize');
  if (size !== null) {
    pageSize = Number(size);
    if (!/^\d+$/.test(size) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
      throw invalidArgument('PAGE_SIZE_INVALID', `pageSize must be from 1 to ${MAX_PAGE_SIZE}`);
    }
  }
  let before = null;
  const token = params.get('pageToken');
  if (token !== null && token !== '') {
    const decoded = Buffer.from(token, 'base64url').toString('utf8');
    const m = /^before:(\d{1,19})$/.exec(decoded);
    if (m === null) {
      throw invalidArgument('PAGE_TOKEN_INVALID', 'pageToken is not one this service gave');
    }
    before = m[1];
  }
  return { pageSize, before };
}

/**
 * The caller's notes, newest first.
 * @param {import('pg').PoolClient} db
 * @param {string} owner
 * @param {{pageSize: number, before: string | null}} page
 */
export async function listNotes(db, owner, { pageSize, before }) {
  const { rows } = await db.query(
    `SELECT id, owner, body, created_at
       FROM node_notes
      WHERE owner = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
      ORDER BY id DESC
      LIMIT $3`,
    [owner, before, pageSize + 1],
  );
  const more = rows.length > pageSize;
  const page = rows.slice(0, pageSize).map(toNote);
  return {
    notes: page,
    nextPageToken: more ? Buffer.from(`before:${page.at(-1).id}`).toString('base64url') : '',
  };
}

/**
 * Adds a note of owner's.
 * @param {import('pg').PoolClient} db
 * @param {string} owner
 * @param {{body: string}} note
 */
export async function createNote(db, owner, { body }) {
  const { rows } = await db.query(
    'INSERT INTO node_notes (owner, body) VALUES ($1, $2) RETURNING id, owner, body, created_at',
    [owner, body],
  );
  return toNote(rows[0]);
}

/** A row as the API shows it. bigint ids stay strings (beyond 2^53). */
function toNote(row) {
  return {
    id: String(row.id),
    owner: row.owner,
    body: row.body,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

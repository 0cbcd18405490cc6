// Tenantry account pages. Each page's <body data-page> names the function
// below that runs it. Everything goes through identity's REST API on this
// same origin (the tenant's host). The access token lives in
// sessionStorage (this tab, this host); the refresh token is an HttpOnly
// cookie that only /v1/auth:refresh and /v1/auth:logout receive, and those
// calls echo the tenantry_csrf cookie in X-CSRF-Token.
'use strict';

(function () {
  const TOKEN_KEY = 'tenantry.accessToken';

  // ---- the texts ----------------------------------------------------------

  // MESSAGES are this script's texts in the page's language, from the JSON
  // the server writes into every page's <meta name="i18n-messages"> (from
  // internal/i18n/locales/<lang>.script.json): English text → translation.
  const MESSAGES = (() => {
    try { return JSON.parse(document.querySelector('meta[name="i18n-messages"]').content) || {}; } catch (e) { return {}; }
  })();

  // t translates key, an English text, filling {0}, {1}, ... with args;
  // a text without a translation shows as its English key.
  function t(key, ...args) {
    const msg = Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : key;
    return msg.replace(/\{(\d+)\}/g, (m, i) => (args[i] !== undefined ? String(args[i]) : m));
  }

  // API_MESSAGES translate the REST API's error messages, which stay English
  // (clients act on the reason, people read the message): the JSON of
  // <meta name="i18n-api-messages"> (internal/i18n/locales/<lang>.errors.json),
  // keyed by the English fmt format the server wrote the message with. The
  // page translates by the message, not the reason: one reason has several
  // messages, and the message carries the texts its verbs wrote.
  const API_MESSAGES = (() => {
    try { return JSON.parse(document.querySelector('meta[name="i18n-api-messages"]').content) || {}; } catch (e) { return {}; }
  })();
  const FMT_VERB = /%(?:\[(\d+)\])?[-+# 0]*\d*(?:\.\d+)?[a-zA-Z%]/g;
  // API_PATTERNS match a formatted message to its key, longest key first
  // (as the server's i18n.Printer.APIMessage does).
  const API_PATTERNS = Object.keys(API_MESSAGES)
    .filter((key) => /%(?!%)/.test(key.replace(/%%/g, '')))
    .map((key) => {
      let re = '^';
      let last = 0;
      for (const m of key.matchAll(FMT_VERB)) {
        re += key.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + (m[0] === '%%' ? '%' : '(.+?)');
        last = m.index + m[0].length;
      }
      re += key.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$';
      return { match: new RegExp(re, 's'), msg: API_MESSAGES[key] };
    })
    .sort((a, b) => b.match.source.length - a.match.source.length || (a.match.source < b.match.source ? -1 : 1));

  // tAPI translates an API error's English message: the texts its verbs
  // wrote go unchanged into the translation's verbs; a message no entry
  // matches shows as it is.
  function tAPI(message) {
    if (!message) return message;
    if (Object.prototype.hasOwnProperty.call(API_MESSAGES, message)) return API_MESSAGES[message];
    for (const p of API_PATTERNS) {
      const args = message.match(p.match);
      if (!args) continue;
      let next = 1;
      return p.msg.replace(FMT_VERB, (v, index) => {
        if (v === '%%') return '%';
        const i = index ? Number(index) : next++;
        return args[i] !== undefined ? args[i] : v;
      });
    }
    return message;
  }

  // ---- the API ----------------------------------------------------------

  class APIError extends Error {
    constructor(status, body) {
      super(tAPI(body && body.message) || ('request failed (HTTP ' + status + ')'));
      this.status = status;
      this.body = body || {};
    }
    get violations() {
      const out = [];
      for (const d of this.body.details || []) {
        for (const v of d.fieldViolations || d.field_violations || []) out.push(v);
      }
      return out;
    }
    get reason() {
      for (const d of this.body.details || []) if (d.reason) return d.reason;
      return '';
    }
    get metadata() {
      for (const d of this.body.details || []) if (d.reason) return d.metadata || {};
      return {};
    }
  }

  function cookie(name) {
    for (const part of document.cookie.split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === name) return decodeURIComponent(v.join('='));
    }
    return '';
  }

  const accessToken = {
    get: () => sessionStorage.getItem(TOKEN_KEY) || '',
    set: (t) => t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY),
  };

  async function send(method, path, body, headers) {
    const init = { method, credentials: 'same-origin', headers: Object.assign({ Accept: 'application/json' }, headers) };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    let data = {};
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { message: text }; }
    }
    if (!resp.ok) throw new APIError(resp.status, data);
    return data;
  }

  // refresh trades the session cookie for a new access token; false when
  // there is no session (the cookie is gone or was revoked).
  async function refresh() {
    const csrf = cookie('tenantry_csrf');
    if (!csrf) return false;
    try {
      const r = await send('POST', '/v1/auth:refresh', {}, { 'X-CSRF-Token': csrf });
      accessToken.set(r.accessToken);
      return true;
    } catch (e) {
      accessToken.set('');
      return false;
    }
  }

  // api calls the API anonymously, or with auth as the logged-in user,
  // refreshing the access token once when it is missing or expired, and
  // asking the user to confirm it is them once when a sensitive action
  // needs a recent proof (REAUTHENTICATION_REQUIRED).
  async function api(method, path, body, auth) {
    if (!auth) return send(method, path, body, {});
    try {
      return await userCall(method, path, body);
    } catch (e) {
      if (!(e instanceof APIError) || e.status !== 403 || e.reason !== 'REAUTHENTICATION_REQUIRED') throw e;
      if (e.metadata.proof === 'passkey') await passkeyReauthenticate();
      else if (!(await reauthenticate(e.metadata.proof === 'code'))) throw e;
      return userCall(method, path, body);
    }
  }

  async function userCall(method, path, body) {
    if (!accessToken.get() && !(await refresh())) throw new APIError(401, { message: t('You are not logged in.') });
    try {
      return await send(method, path, body, { Authorization: 'Bearer ' + accessToken.get() });
    } catch (e) {
      if (!(e instanceof APIError) || e.status !== 401 || !(await refresh())) throw e;
      return send(method, path, body, { Authorization: 'Bearer ' + accessToken.get() });
    }
  }

  // ---- passkeys (WebAuthn) ------------------------------------------------
  // The server's options go to navigator.credentials as they are, and the
  // browser's credential goes back as PublicKeyCredential.toJSON() makes
  // it: the server (go-webauthn) checks everything.

  const passkeysSupported = !!(window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON &&
    PublicKeyCredential.parseCreationOptionsFromJSON);

  async function passkeyGet(options) {
    const cred = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
    return cred.toJSON();
  }

  async function passkeyCreate(options) {
    const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
    return cred.toJSON();
  }

  // passkeyMessage words a failed ceremony: the browser's refusals
  // (cancelled, no passkey for this site, timed out) are all one
  // NotAllowedError.
  function passkeyMessage(err) {
    if (err && err.name === 'NotAllowedError') return t('No passkey was used: it was cancelled, or this browser has no passkey for this site.');
    if (err && err.name === 'InvalidStateError') return t('This passkey is registered already.');
    return (err && err.message) || t('The passkey did not work.');
  }

  // passkeyReauthenticate proves the user's passkey again, for a sensitive
  // action of an account whose only second factor is a passkey.
  async function passkeyReauthenticate() {
    const b = await userCall('POST', '/v1/auth:beginPasskeyReauthentication', {});
    await userCall('POST', '/v1/auth:finishPasskeyReauthentication', { ceremonyToken: b.ceremonyToken, credential: await passkeyGet(b.options) });
  }

  // reauthenticate asks, in a dialog, for the proof a sensitive action
  // needs (a code of the authenticator app, or the password) and gives it
  // to the API; false when the user cancels.
  function reauthenticate(needsCode) {
    return new Promise((resolve) => {
      const input = el('input', { id: 'reauth-secret', name: 'reauth-secret', type: needsCode ? 'text' : 'password',
        autocomplete: needsCode ? 'one-time-code' : 'current-password', 'aria-describedby': 'reauth-error' });
      const error = el('p', { id: 'reauth-error', class: 'field-error' });
      const cancel = el('button', { type: 'button', class: 'secondary', text: t('Cancel') });
      const form = el('form', { method: 'dialog', novalidate: '' },
        el('p', { text: needsCode
          ? t('Confirm it is you: enter the code your authenticator app shows, or one of your recovery codes.')
          : t('Confirm it is you: enter your password.') }),
        el('div', { class: 'field' }, el('label', { for: 'reauth-secret', text: needsCode ? t('Code') : t('Password') }), input, error),
        el('div', { class: 'buttons' }, el('button', { type: 'submit', text: t('Confirm') }), cancel));
      const dialog = el('dialog', { id: 'reauth-dialog', 'aria-label': t('Confirm it is you') }, form);
      const end = (ok) => { dialog.close(); dialog.remove(); resolve(ok); };
      cancel.addEventListener('click', () => end(false));
      dialog.addEventListener('cancel', (ev) => { ev.preventDefault(); end(false); });
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        error.textContent = '';
        let proof = { password: input.value };
        if (needsCode) {
          const code = input.value.replace(/\s+/g, '');
          proof = /^\d{6}$/.test(code) ? { totpCode: code } : { recoveryCode: input.value };
        }
        try {
          await userCall('POST', '/v1/auth:reauthenticate', proof);
          end(true);
        } catch (err) {
          error.textContent = err.message;
          input.setAttribute('aria-invalid', 'true');
          input.focus();
        }
      });
      document.body.append(dialog);
      dialog.showModal();
      input.focus();
    });
  }

  // ---- the page ----------------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);

  function say(text, isError) {
    const m = $('#message');
    m.classList.toggle('error', !!isError);
    m.textContent = text;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function clearErrors(form) {
    for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
    for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  }

  // fieldOf finds where form shows the errors of the API's field path: the
  // element whose id is the field (an input, a textarea, or the fieldset
  // of a group of checkboxes), else an input of that name or one that
  // says the API also names it so. The path loses the request's message
  // ("user.", "oauth_client.") and an entry's index: the violations of
  // redirect_uris[2] go next to the one box that holds the list.
  function fieldOf(form, path) {
    const field = String(path || '').replace(/^(user|oauth_client)\./, '').replace(/\[\d+\]$/, '');
    const byID = form.querySelector('#' + CSS.escape(field));
    if (byID && byID.type !== 'hidden' && $('#' + CSS.escape(field) + '-error', form)) return byID;
    return form.querySelector('input:not([type="hidden"])[name="' + CSS.escape(field) + '"][id]') ||
      form.querySelector('[data-also="' + CSS.escape(field) + '"]');
  }

  // showError puts every field violation next to its field, all at once
  // (the API names every field to correct), and the rest in the page's
  // message.
  function showError(form, err) {
    let first = null;
    const elsewhere = [];
    if (err instanceof APIError && form) {
      for (const v of err.violations) {
        const input = fieldOf(form, v.field);
        // An entry's description starts with its path, which the field
        // next to it makes plain.
        let text = tAPI(v.description) || err.message;
        if (/\[\d+\]$/.test(v.field || '') && text.startsWith(v.field + ': ')) text = text.slice(v.field.length + 2);
        if (!input) { elsewhere.push(text); continue; }
        input.setAttribute('aria-invalid', 'true');
        const p = $('#' + CSS.escape(input.id) + '-error');
        p.textContent = (p.textContent ? p.textContent + ' ' : '') + text;
        first = first || input;
      }
    }
    if (!first) { say(err.message || String(err), true); return; }
    // The first field with an error in the form's order gets the focus (a
    // group's first box).
    for (const input of form.querySelectorAll('[aria-invalid="true"]')) {
      (input.matches('fieldset') ? input.querySelector('input') : input).focus();
      break;
    }
    say([t('Please correct the fields marked below.'), ...elsewhere].join(' '), true);
  }

  // values are what a person typed in the form; hidden fields (a link's
  // token, the login's next) are there for the server's own handling of
  // the form and are read where needed.
  function values(form) {
    const out = {};
    for (const input of form.querySelectorAll('input[name]:not([type="hidden"])')) {
      if (input.value !== '') out[input.name] = input.value;
    }
    return out;
  }

  // hidden returns the value of the page's hidden field name, which the
  // server fills in for a form that works without the script.
  function hidden(name) {
    const input = document.querySelector('input[type="hidden"][name="' + CSS.escape(name) + '"]');
    return input ? input.value : '';
  }

  // onSubmit runs fn with the form's values, showing its errors.
  function onSubmit(form, fn) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      say('');
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      try {
        await fn(values(form));
      } catch (err) {
        showError(form, err);
      } finally {
        button.disabled = false;
      }
    });
  }

  // takeToken reads ?token= and removes it from the address bar, so it is
  // not kept in history or shown over a shoulder; a page the server showed
  // after its form was posted has the token in its form instead.
  function takeToken() {
    const token = new URLSearchParams(location.search).get('token') || '';
    if (token) history.replaceState(null, '', location.pathname);
    return token || hidden('token');
  }

  // nextPath is where the login page goes once logged in: its ?next= when
  // the browser's own URL parser puts it on this origin, else the account
  // page. Parsing, not string checks, because the browser drops tabs and
  // newlines and reads "\" as "/" before navigating (next=/%5Cevil and
  // next=/%09/evil are other hosts). Only the path, query and fragment are kept;
  // a path that still starts with "//" (from "/.//evil") is refused, since
  // as a link it would name a host.
  function nextPath() {
    // The form's next when the server showed the page again after a
    // failed login, which has no ?next= any more.
    const next = new URLSearchParams(location.search).get('next') || hidden('next');
    if (!next) return '/account';
    let url;
    try {
      url = new URL(next, location.origin);
    } catch (e) {
      return '/account';
    }
    if (url.origin !== location.origin || url.pathname.startsWith('//')) return '/account';
    return url.pathname + url.search + url.hash;
  }

  async function showTenant() {
    try {
      // The server names the tenant from its settings (branding) already.
      if (document.querySelector('[data-server-named]')) return;
      const c = await api('GET', '/v1/auth/config');
      const name = c.tenantDisplayName || c.tenant;
      if (!name) return;
      for (const e of document.querySelectorAll('[data-tenant-name]')) e.textContent = name;
      document.title = document.title + ' · ' + name;
    } catch (e) { /* the pages work without the name */ }
  }

  function when(ts) {
    if (!ts) return t('unknown');
    const d = new Date(ts);
    return isNaN(d) ? ts : d.toLocaleString(document.documentElement.lang || undefined);
  }

  // ---- the pages ---------------------------------------------------------

  const pages = {
    'signup': () => {
      const form = $('#signup-form');
      onSubmit(form, async (v) => {
        const r = await api('POST', '/v1/auth:signup', v);
        form.reset();
        say(r.verificationRequired
          ? t('Account created. We sent you an email: open its link to verify your address, then log in.')
          : t('Account created. You can log in now.'));
      });
    },

    'verify-email': async () => {
      const status = $('#verify-status');
      // The button is for browsers without the script; the script verifies
      // at once.
      const form = $('#verify-form');
      // No form: the link had no token, or this is the server's answer to
      // the form; the page already says so.
      if (!form) return;
      form.hidden = true;
      const token = takeToken();
      if (!token) { status.textContent = t('This link has no token. Open the link from your email again.'); return; }
      try {
        status.textContent = t('Checking your verification link…');
        const r = await api('POST', '/v1/auth:verifyEmail', { token });
        status.textContent = t('Your email {0} is verified. You can log in now.', r.email || '');
        say(t('Email verified.'));
      } catch (err) {
        status.textContent = t('This link could not be used:') + ' ' + err.message;
        say(err.message, true);
      }
    },

    'login': () => {
      const loginForm = $('#login-form');
      const mfaForm = $('#mfa-form');
      const loggedIn = (r) => {
        accessToken.set(r.accessToken);
        location.assign(nextPath());
      };
      const enrolForm = $('#enrol-form');
      const showRecoveryCodes = (codes) => {
        $('#recovery-codes').replaceChildren(...codes.map((c) => el('li', {}, el('code', { text: c }))));
        $('#codes-continue').href = nextPath();
        $('#enrol-section').hidden = true;
        $('#codes-section').hidden = false;
        $('#codes-continue').focus();
      };
      onSubmit(loginForm, async (v) => {
        const r = await send('POST', '/v1/auth:login', v, { 'X-Tenantry-Client': 'browser' });
        if (r.mfaChallenge && r.mfaChallenge.enrollmentRequired) {
          // The tenant requires a second factor the account has none of:
          // enrol an app, which completes the login.
          const e = await send('POST', '/v1/auth:beginLoginTotpEnrollment', { mfaChallenge: r.mfaChallenge.token });
          $('input[name="mfa_challenge"]', enrolForm).value = r.mfaChallenge.token;
          $('input[name="secret"]', enrolForm).value = e.secret;
          $('#enrol-qr').src = 'data:image/png;base64,' + e.qrCodePng;
          $('#enrol-qr').hidden = false;
          $('#enrol-secret').textContent = e.secret;
          loginForm.hidden = true;
          $('#enrol-section').hidden = false;
          say(t('This organisation requires a second factor: add this key to an authenticator app, then enter the code it shows.'));
          $('#enrol_code').focus();
          return;
        }
        if (r.mfaChallenge) {
          // The password was right; the account has a second factor.
          $('input[name="mfa_challenge"]', mfaForm).value = r.mfaChallenge.token;
          // The tenant may let this browser skip the code for some days.
          const days = r.mfaChallenge.rememberDeviceDays || 0;
          $('#remember-days').textContent = String(days);
          $('#remember-field').hidden = !days;
          loginForm.hidden = true;
          $('#passkey-login').hidden = true;
          const factors = r.mfaChallenge.factors || [];
          const passkey = passkeysSupported && factors.includes('MFA_FACTOR_PASSKEY');
          $('#passkey-mfa').hidden = !passkey;
          if (passkey && !factors.some((f) => f !== 'MFA_FACTOR_PASSKEY')) {
            // A passkey is the account's only factor: no code to type.
            say(t('Use your passkey to finish logging in.'));
            $('#passkey-mfa-button').focus();
            return;
          }
          mfaForm.hidden = false;
          say(t('Enter the code your authenticator app shows, or one of your recovery codes.'));
          $('#code', mfaForm).focus();
          return;
        }
        loggedIn(r);
      });
      onSubmit(enrolForm, async (v) => {
        const r = await send('POST', '/v1/auth:confirmLoginTotpEnrollment', {
          mfaChallenge: $('input[name="mfa_challenge"]', enrolForm).value,
          totpCode: (v.enrol_code || '').replace(/\s+/g, ''),
        }, { 'X-Tenantry-Client': 'browser' });
        accessToken.set(r.accessToken);
        say(t('Your authenticator app is on, and you are logged in. Keep your recovery codes now: they will not be shown again.'));
        showRecoveryCodes(r.recoveryCodes || []);
      });
      // Passkeys: without a password, or as the second factor.
      if (passkeysSupported && !loginForm.hidden) $('#passkey-login').hidden = false;
      // The server hid the code form of a second step whose only factor is
      // a passkey (data-passkey-only), as the password's answer above does.
      if (passkeysSupported && (!mfaForm.hidden || mfaForm.hasAttribute('data-passkey-only'))) $('#passkey-mfa').hidden = false;
      $('#passkey-login-button').addEventListener('click', async () => {
        say('');
        try {
          const b = await send('POST', '/v1/auth:beginPasskeyLogin', {});
          const credential = await passkeyGet(b.options);
          loggedIn(await send('POST', '/v1/auth:finishPasskeyLogin', { ceremonyToken: b.ceremonyToken, credential },
            { 'X-Tenantry-Client': 'browser' }));
        } catch (err) { say(passkeyMessage(err), true); }
      });
      $('#passkey-mfa-button').addEventListener('click', async () => {
        say('');
        const mfaChallenge = $('input[name="mfa_challenge"]', mfaForm).value;
        try {
          const b = await send('POST', '/v1/auth:beginPasskeyMfa', { mfaChallenge });
          const credential = await passkeyGet(b.options);
          loggedIn(await send('POST', '/v1/auth:finishPasskeyMfa', { mfaChallenge, ceremonyToken: b.ceremonyToken, credential },
            { 'X-Tenantry-Client': 'browser' }));
        } catch (err) { say(passkeyMessage(err), true); }
      });
      onSubmit(mfaForm, async (v) => {
        // Six digits are the app's code; anything else a recovery code.
        const code = (v.code || '').replace(/\s+/g, '');
        const body = { mfaChallenge: $('input[name="mfa_challenge"]', mfaForm).value };
        if (/^\d{6}$/.test(code)) body.totpCode = code; else body.recoveryCode = v.code || '';
        if ($('#remember_device').checked) body.rememberDevice = true;
        loggedIn(await send('POST', '/v1/auth:verifyMfa', body, { 'X-Tenantry-Client': 'browser' }));
      });
    },

    'forgot-password': () => {
      const form = $('#forgot-form');
      onSubmit(form, async (v) => {
        await api('POST', '/v1/auth:requestPasswordReset', v);
        form.reset();
        say(t('If this email belongs to an account, a link to choose a new password is on its way.'));
      });
    },

    'reset-password': () => {
      const form = $('#reset-form');
      if (!form) return; // the server's answer to the form, which is done
      const token = takeToken();
      if (!token) say(t('This link has no token. Open the link from your email again.'), true);
      onSubmit(form, async (v) => {
        await api('POST', '/v1/auth:resetPassword', { token, new_password: v.new_password || '' });
        form.reset();
        say(t('Your password is changed. You can log in with it now.'));
      });
    },

    'accept-invitation': () => {
      const form = $('#accept-form');
      if (!form) return; // the server's answer to the form, which is done
      const token = takeToken();
      if (!token) say(t('This link has no token. Open the link from your email again.'), true);
      onSubmit(form, async (v) => {
        await api('POST', '/v1/auth:acceptInvitation', Object.assign({ token }, v));
        form.reset();
        say(t('Welcome! Your account is ready: you can log in now.'));
      });
    },

    'account': async () => {
      const loggedOut = (text) => {
        accessToken.set('');
        $('#logged-in').hidden = true;
        $('#logged-out').hidden = false;
        if (text) $('#logged-out-text').textContent = text;
      };
      let me;
      try {
        me = (await api('GET', '/v1/auth/me', undefined, true)).user || {};
      } catch (err) {
        loggedOut(err.status === 401 ? '' : t('Your account could not be loaded:') + ' ' + err.message);
        return;
      }
      $('#me-email').textContent = me.email || me.username || '';
      $('#admin-link').hidden = !(me.roles || []).includes('admin');
      $('#logged-in').hidden = false;

      $('#logout').addEventListener('click', async () => {
        try {
          await send('POST', '/v1/auth:logout', {}, { 'X-CSRF-Token': cookie('tenantry_csrf') });
        } catch (err) { /* the session is over either way */ }
        loggedOut(t('You are logged out.'));
        say(t('You are logged out.'));
        $('#logged-out a').focus();
      });

      // The export of one's data, saved as a JSON file (it asks who it is
      // first when the session has not proved them lately).
      $('#export').addEventListener('click', async () => {
        try {
          const r = await api('GET', '/v1/account:export', undefined, true);
          const url = URL.createObjectURL(new Blob([JSON.stringify(r.data, null, 2)], { type: 'application/json' }));
          const a = el('a', { href: url, download: 'account-data.json' });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
          say(t('Your data is downloaded.'));
        } catch (err) { say(err.message, true); }
      });

      // Deletion by the owner: at the end of the tenant's grace period,
      // unless they log in or keep the account before then.
      const showDeletion = (deleteTime) => {
        $('#deletion-status').textContent = deleteTime
          ? t('Your account will be deleted on {0}. Log in before then, or keep it here, to cancel.', when(deleteTime))
          : t('Deleting your account removes it and everything in it, after a grace period in which you can change your mind.');
        $('#delete-account').hidden = !!deleteTime;
        $('#keep-account').hidden = !deleteTime;
      };
      api('GET', '/v1/account/deletion', undefined, true).then((r) => showDeletion(r.deleteTime)).catch(() => showDeletion(''));
      $('#delete-account').addEventListener('click', async () => {
        if (!window.confirm(t('Delete your account? You can still cancel during the grace period.'))) return;
        try {
          const r = await api('POST', '/v1/account:requestDeletion', {}, true);
          showDeletion(r.deleteTime);
          say(t('Your account will be deleted on {0}. We sent you an email.', when(r.deleteTime)));
        } catch (err) { say(err.message, true); }
      });
      $('#keep-account').addEventListener('click', async () => {
        try {
          await api('POST', '/v1/account:cancelDeletion', {}, true);
          showDeletion('');
          say(t('Your account is kept.'));
        } catch (err) { say(err.message, true); }
      });

      const form = $('#password-form');
      onSubmit(form, async (v) => {
        await api('POST', '/v1/auth:changePassword', v, true);
        form.reset();
        say(t('Your password is changed.'));
        await loadSessions();
      });

      // A change of address takes effect once the link mailed to the new
      // address is opened (the old one is told then).
      const emailForm = $('#email-form');
      onSubmit(emailForm, async (v) => {
        await api('POST', '/v1/auth:changeEmail', { new_email: v.new_email, password: v.password }, true);
        emailForm.reset();
        say(t('We sent a link to {0}: open it to confirm the change.', v.new_email));
      });

      // The email addresses: the primary one (logging in, mails) and the
      // others, each made primary once the link mailed to it was opened.
      // Buttons, not forms: without the script the section stays hidden.
      async function loadAddresses() {
        let r;
        try {
          r = await api('GET', '/v1/account/emailAddresses', undefined, true);
        } catch (err) {
          if (err.status === 401) { loggedOut(t('Your session has ended.')); return; }
          say(err.message, true);
          return;
        }
        const ul = $('#addresses');
        ul.replaceChildren();
        for (const a of r.emailAddresses || []) {
          const state = a.primary ? t('primary') : a.verified ? t('confirmed') : t('waiting for its link to be opened');
          const item = el('li', { class: 'address' }, el('span', { text: t('{0} ({1}), added {2}', a.email, state, when(a.createTime)) }));
          const action = (label, aria, run) => {
            const button = el('button', { type: 'button', class: 'secondary', text: label });
            button.setAttribute('aria-label', aria);
            button.addEventListener('click', async () => {
              try {
                await run();
                await loadAddresses();
              } catch (err) { say(err.message, true); }
            });
            item.append(button);
          };
          if (!a.primary && a.verified) {
            action(t('Make primary'), t('Make {0} your primary address', a.email), async () => {
              await api('POST', '/v1/account/emailAddresses:setPrimary', { email: a.email }, true);
              $('#me-email').textContent = a.email;
              say(t('{0} is your primary address now.', a.email));
            });
          }
          if (!a.primary) {
            action(t('Remove'), t('Remove the address {0}', a.email), async () => {
              await api('POST', '/v1/account/emailAddresses:remove', { email: a.email }, true);
              say(t('{0} is removed.', a.email));
            });
          }
          ul.append(item);
        }
        $('#addresses-section').hidden = false;
      }
      $('#address-add-button').addEventListener('click', async () => {
        const email = $('#address-new').value.trim();
        if (!email) return;
        try {
          await api('POST', '/v1/account/emailAddresses', { email }, true);
          $('#address-new').value = '';
          say(t('We sent a link to {0}: open it to confirm the address.', email));
          await loadAddresses();
        } catch (err) { say(err.message, true); }
      });
      await loadAddresses();

      const list = $('#sessions');
      async function loadSessions() {
        let r;
        try {
          r = await api('GET', '/v1/auth/sessions', undefined, true);
        } catch (err) {
          if (err.status === 401) { loggedOut(t('Your session has ended.')); return; }
          say(err.message, true);
          return;
        }
        list.replaceChildren();
        for (const s of r.sessions || []) {
          const device = s.deviceName || s.userAgent || t('Unknown browser');
          const desc = (s.clientIp ? t('{0} from {1}', device, s.clientIp) : device) + ', ' +
            t('last used {0}', when(s.refreshTime || s.createTime)) + (s.current ? ' ' + t('(this session)') : '');
          const button = el('button', { type: 'button', class: 'secondary', text: t('Revoke') });
          button.setAttribute('aria-label', t('Revoke the session of {0}', desc));
          button.addEventListener('click', async () => {
            try {
              await api('DELETE', '/v1/auth/sessions/' + encodeURIComponent(s.id), undefined, true);
              if (s.current) { loggedOut(t('You revoked this session: you are logged out.')); return; }
              say(t('Session revoked.'));
              await loadSessions();
            } catch (err) { say(err.message, true); }
          });
          list.append(el('li', {}, el('span', { text: desc }), button));
        }
      }
      await loadSessions();

      // Other identity providers: those connected, with Disconnect, and
      // the tenant's others, with Connect (the browser goes to the
      // provider and comes back to this page).
      async function loadIdentities() {
        let linked, providers;
        try {
          const [r, config] = await Promise.all([
            api('GET', '/v1/auth/identities', undefined, true),
            api('GET', '/v1/auth/config'),
          ]);
          linked = r.linkedIdentities || [];
          providers = config.identityProviders || [];
        } catch (err) {
          if (err.status === 401) { loggedOut(t('Your session has ended.')); return; }
          say(err.message, true);
          return;
        }
        $('#identities-section').hidden = linked.length === 0 && providers.length === 0;
        const ul = $('#identities');
        ul.replaceChildren();
        for (const l of linked) {
          const name = l.providerDisplayName || l.providerId;
          const desc = name + (l.email ? ' (' + l.email + ')' : '') + ', connected ' + when(l.createTime) +
            (l.lastLoginTime ? ', last used ' + when(l.lastLoginTime) : '');
          const button = el('button', { type: 'button', class: 'secondary', text: t('Disconnect') });
          button.setAttribute('aria-label', t('Disconnect {0}', name));
          button.addEventListener('click', async () => {
            try {
              await api('DELETE', '/v1/auth/identities/' + encodeURIComponent(l.providerId), undefined, true);
              say(t('{0} is disconnected.', name));
              await loadIdentities();
            } catch (err) { say(err.message, true); }
          });
          ul.append(el('li', {}, el('span', { text: desc }), button));
        }
        const connect = $('#connect');
        connect.replaceChildren();
        for (const p of providers) {
          if (linked.some((l) => l.providerId === p.providerId)) continue;
          const button = el('button', { type: 'button', class: 'secondary', text: t('Connect {0}', p.displayName) });
          button.addEventListener('click', async () => {
            try {
              const r = await api('POST', p.loginPath + '/connect', undefined, true);
              location.assign(r.authorizationUrl);
            } catch (err) { say(err.message, true); }
          });
          connect.append(button);
        }
      }
      await loadIdentities();

      // Passkeys: the account's, renamed or removed in place; a new one
      // made by this browser.
      async function loadPasskeys() {
        let r;
        try {
          r = await api('GET', '/v1/auth/passkeys', undefined, true);
        } catch (err) {
          if (err.status === 401) { loggedOut(t('Your session has ended.')); return; }
          say(err.message, true);
          return;
        }
        const ul = $('#passkeys');
        ul.replaceChildren();
        for (const p of r.passkeys || []) {
          const desc = p.displayName + ', added ' + when(p.createTime) + (p.lastUseTime ? ', last used ' + when(p.lastUseTime) : '');
          const rename = el('button', { type: 'button', class: 'secondary', text: t('Rename') });
          rename.setAttribute('aria-label', t('Rename the passkey {0}', p.displayName));
          rename.addEventListener('click', async () => {
            const name = window.prompt(t('New name of the passkey'), p.displayName);
            if (!name) return;
            try {
              await api('POST', '/v1/auth/passkeys/' + encodeURIComponent(p.id) + ':rename', { displayName: name }, true);
              say(t('The passkey is renamed.'));
              await loadPasskeys();
            } catch (err) { say(err.message, true); }
          });
          const remove = el('button', { type: 'button', class: 'secondary', text: t('Remove') });
          remove.setAttribute('aria-label', t('Remove the passkey {0}', p.displayName));
          remove.addEventListener('click', async () => {
            try {
              await api('DELETE', '/v1/auth/passkeys/' + encodeURIComponent(p.id), undefined, true);
              say(t('The passkey is removed.'));
              await loadPasskeys();
            } catch (err) { say(passkeyMessage(err), true); }
          });
          ul.append(el('li', { class: 'passkey' }, el('span', { text: desc }), rename, remove));
        }
        $('#passkeys-section').hidden = false;
      }
      // A button, not a form: without the script there is no passkey to
      // make.
      if (passkeysSupported) {
        $('#passkey-add-button').addEventListener('click', async () => {
          say('');
          try {
            const b = await api('POST', '/v1/auth/passkeys:beginRegistration', {}, true);
            const credential = await passkeyCreate(b.options);
            await api('POST', '/v1/auth/passkeys:finishRegistration',
              { ceremonyToken: b.ceremonyToken, credential, displayName: $('#passkey-name').value }, true);
            $('#passkey-name').value = '';
            say(t('Your passkey is added.'));
            await loadPasskeys();
          } catch (err) { say(passkeyMessage(err), true); }
        });
        await loadPasskeys();
      }

      // The authenticator app (TOTP): add it (QR code, key, a code to
      // confirm), regenerate the recovery codes or remove it with a code.
      const mfaSection = $('#mfa-section');
      const confirmForm = $('#mfa-confirm-form');
      const manageForm = $('#mfa-manage-form');
      async function loadMFA() {
        let st;
        try {
          st = await api('GET', '/v1/auth/mfa', undefined, true);
        } catch (err) {
          if (err.status === 401) { loggedOut(t('Your session has ended.')); return; }
          say(err.message, true);
          return;
        }
        mfaSection.hidden = false;
        $('#mfa-status').textContent = st.totpEnrolled
          ? t('On since {0}. Recovery codes left: {1}.', when(st.totpEnrollTime), st.recoveryCodesRemaining || 0)
          : t('Off: logging in asks for your password only.');
        $('#mfa-begin').hidden = !!st.totpEnrolled;
        manageForm.hidden = !st.totpEnrolled;
        $('#mfa-enrol').hidden = true;
      }
      function showCodes(codes) {
        $('#mfa-code-list').replaceChildren(...codes.map((c) => el('li', {}, el('code', { text: c }))));
        $('#mfa-codes').hidden = false;
      }
      // Six digits are the app's code; anything else a recovery code.
      function proof(v) {
        const code = (v.mfa_code || '').replace(/\s+/g, '');
        return /^\d{6}$/.test(code) ? { totpCode: code } : { recoveryCode: v.mfa_code || '' };
      }
      $('#mfa-begin').addEventListener('click', async () => {
        try {
          const r = await api('POST', '/v1/auth/mfa/totp:begin', {}, true);
          $('#mfa-qr').src = 'data:image/png;base64,' + r.qrCodePng;
          $('#mfa-secret').textContent = r.secret;
          $('#mfa-codes').hidden = true;
          $('#mfa-begin').hidden = true;
          $('#mfa-enrol').hidden = false;
          $('#totp_code').focus();
        } catch (err) { say(err.message, true); }
      });
      onSubmit(confirmForm, async (v) => {
        const r = await api('POST', '/v1/auth/mfa/totp:confirm', { totpCode: (v.totp_code || '').replace(/\s+/g, '') }, true);
        confirmForm.reset();
        await loadMFA();
        showCodes(r.recoveryCodes || []);
        say(t('Your authenticator app is on. Keep your recovery codes now: they will not be shown again.'));
      });
      onSubmit(manageForm, async (v) => {
        const r = await api('POST', '/v1/auth/mfa/recoveryCodes:regenerate', proof(v), true);
        manageForm.reset();
        await loadMFA();
        showCodes(r.recoveryCodes || []);
        say(t('New recovery codes: the old ones no longer work. Keep these now: they will not be shown again.'));
      });
      $('#mfa-remove').addEventListener('click', async () => {
        clearErrors(manageForm);
        say('');
        try {
          await api('POST', '/v1/auth/mfa/totp:remove', proof(values(manageForm)), true);
          manageForm.reset();
          $('#mfa-codes').hidden = true;
          await loadMFA();
          say(t('The authenticator app is removed.'));
        } catch (err) { showError(manageForm, err); }
      });
      await loadMFA();
    },

    'admin-users': async () => {
      const tbody = $('#users');
      const more = $('#more');
      let nextPage = '';
      let query = '';
      const cell = (label, ...children) => el('td', { 'data-label': label }, ...children);

      function row(u) {
        const tr = el('tr', {});
        const label = u.email || u.username || u.id;
        const invited = String(u.state || '').endsWith('INVITED');
        const state = t(u.disabled ? 'disabled' : String(u.state || '').replace(/^STATE_/, '').toLowerCase()) +
          (u.mfaEnabled ? ', ' + t('authenticator app') : '');
        const roles = el('input', { type: 'text', value: (u.roles || []).join(', '), 'aria-label': t('Roles of {0}', label) });
        const save = el('button', { type: 'button', class: 'secondary', text: t('Save roles'), 'aria-label': t('Save the roles of {0}', label) });
        const toggle = el('button', { type: 'button', class: 'secondary', text: u.disabled ? t('Enable') : t('Disable'),
          'aria-label': u.disabled ? t('Enable {0}', label) : t('Disable {0}', label) });
        const update = async (mask, patch, done) => {
          try {
            const r = await api('PATCH', '/v1/users/' + encodeURIComponent(u.id) + '?update_mask=' + mask,
              Object.assign({ etag: u.etag }, patch), true);
            tr.replaceWith(row(r.user || r));
            say(done);
          } catch (err) { say(label + ': ' + err.message, true); }
        };
        save.addEventListener('click', () => update('roles',
          { roles: roles.value.split(',').map((s) => s.trim()).filter(Boolean) }, t('Roles of {0} saved.', label)));
        toggle.addEventListener('click', () => update('disabled', { disabled: !u.disabled },
          u.disabled ? t('{0} enabled.', label) : t('{0} disabled.', label)));
        // For a user who lost their authenticator app: asks first.
        const resetMFA = el('button', { type: 'button', class: 'secondary', text: t('Reset second factor'),
          'aria-label': t('Remove the authenticator app of {0}', label) });
        resetMFA.addEventListener('click', async () => {
          if (!confirm(t('Remove the authenticator app and recovery codes of {0}?', label))) return;
          try {
            await api('POST', '/v1/users/' + encodeURIComponent(u.id) + ':resetMfa', {}, true);
            resetMFA.hidden = true;
            say(t('The authenticator app of {0} is removed; they were told by email.', label));
          } catch (err) { say(label + ': ' + err.message, true); }
        });
        resetMFA.hidden = !u.mfaEnabled;
        // Inviting an invited user again mails a new link (the old one
        // stops working) with the same roles and name.
        const resend = el('button', { type: 'button', class: 'secondary', text: t('Resend invitation'),
          'aria-label': t('Resend the invitation of {0}', label) });
        resend.addEventListener('click', async () => {
          try {
            await api('POST', '/v1/users:invite', { email: u.email, roles: u.roles || [], display_name: u.displayName || '' }, true);
            say(t('Invitation sent to {0}.', u.email));
          } catch (err) { say(label + ': ' + err.message, true); }
        });
        resend.hidden = !invited;
        const remove = el('button', { type: 'button', class: 'secondary danger', text: t('Delete'), 'aria-label': t('Delete {0}', label) });
        remove.addEventListener('click', async () => {
          if (!confirm(t('Delete the account of {0}? This cannot be undone.', label))) return;
          try {
            await api('DELETE', '/v1/users/' + encodeURIComponent(u.id), undefined, true);
            tr.remove();
            say(t('{0} deleted.', label));
          } catch (err) { say(label + ': ' + err.message, true); }
        });
        tr.append(cell(t('Email'), el('span', { text: label })), cell(t('State'), el('span', { text: state })), cell(t('Roles'), roles),
          cell(t('Actions'), el('div', { class: 'actions' }, save, toggle, resend, resetMFA, remove)));
        return tr;
      }

      async function load() {
        const q = '?page_size=50' + (query ? '&query=' + encodeURIComponent(query) : '') +
          (nextPage ? '&page_token=' + encodeURIComponent(nextPage) : '');
        const r = await api('GET', '/v1/users' + q, undefined, true);
        for (const u of r.users || []) tbody.append(row(u));
        nextPage = r.nextPageToken || '';
        more.hidden = !nextPage;
        $('#no-users').hidden = tbody.rows.length > 0;
      }

      try {
        await load();
      } catch (err) {
        $('#forbidden').hidden = false;
        if (err.status !== 401 && err.status !== 403) say(err.message, true);
        return;
      }
      $('#admin').hidden = false;
      more.addEventListener('click', () => load().catch((err) => say(err.message, true)));
      $('#search-form').addEventListener('submit', (e) => {
        e.preventDefault();
        query = $('#search').value.trim();
        nextPage = '';
        tbody.replaceChildren();
        load().catch((err) => say(err.message, true));
      });

      const form = $('#invite-form');
      onSubmit(form, async (v) => {
        const body = { email: v.email || '', display_name: v.display_name || '',
          roles: (v.roles || '').split(',').map((s) => s.trim()).filter(Boolean) };
        const r = await api('POST', '/v1/users:invite', body, true);
        form.reset();
        if (r.user) tbody.append(row(r.user));
        say(t('Invitation sent to {0}.', body.email));
      });
    },

    // The tenant's OAuth clients. A client secret is only ever in the
    // answer of a create or a rotation, then in the secret panel's box
    // until it is hidden or the page is left: never in a URL or in
    // storage.
    'admin-clients': async () => {
      const list = $('#clients');
      const more = $('#more');
      const form = $('#client-form');
      const panel = $('#secret-panel');
      const secretBox = $('#secret-value');
      const rows = new Map(); // client id → { client, li }
      let nextPage = '';
      let editing = null; // the client id being edited, or null

      const label = (c) => c.displayName || c.clientId;
      const path = (c) => '/v1/oauthClients/' + encodeURIComponent(c.clientId);
      const grantName = (g) => String(g).replace(/^GRANT_TYPE_/, '').toLowerCase();

      // confirm asks in the page's dialog (no window.confirm: the page
      // keeps its own words and focus) and resolves to whether the person
      // agreed.
      function confirm(text, yes) {
        const dialog = $('#confirm');
        $('#confirm-text').textContent = text;
        $('#confirm-yes').textContent = yes;
        dialog.returnValue = '';
        return new Promise((resolve) => {
          dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
          dialog.showModal();
          $('#confirm-no').focus();
        });
      }
      $('#confirm-yes').addEventListener('click', () => $('#confirm').close('yes'));
      $('#confirm-no').addEventListener('click', () => $('#confirm').close('no'));

      function showSecret(c, secret) {
        $('#secret-client-id').textContent = c.clientId;
        secretBox.value = secret;
        panel.hidden = false;
        panel.focus();
      }
      function hideSecret() {
        secretBox.value = '';
        $('#secret-client-id').textContent = '';
        panel.hidden = true;
      }
      $('#secret-copy').addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(secretBox.value);
          say(t('The secret is copied. Store it now: it will not be shown again.'));
        } catch (e) {
          secretBox.focus();
          secretBox.select();
          say(t('Copy the selected secret (Ctrl+C or ⌘C): it will not be shown again.'));
        }
      });
      $('#secret-done').addEventListener('click', () => { hideSecret(); say(''); });

      function item(c) {
        const name = label(c);
        const li = el('li', { 'data-client': c.clientId });
        const confidential = c.type === 'TYPE_CONFIDENTIAL';
        const details = el('div', { class: 'client' },
          el('strong', { class: 'client-name', text: name }),
          c.disabled ? el('span', { class: 'badge', text: 'disabled' }) : '',
          el('br'), el('code', { text: c.clientId }),
          el('span', { text: ' · ' + (confidential ? 'confidential' : 'public') +
            (c.firstParty ? ', first-party' : '') + ' · ' + (c.grantTypes || []).map(grantName).join(', ') +
            ((c.allowedScopes || []).length ? ' · scopes: ' + c.allowedScopes.join(' ') : '') }));
        const button = (action, text, aria, fn) => {
          const b = el('button', { type: 'button', class: 'secondary', 'data-action': action, text, 'aria-label': aria });
          b.addEventListener('click', async () => {
            b.disabled = true;
            try { await fn(); } catch (err) { say(name + ': ' + err.message, true); } finally { b.disabled = false; }
          });
          return b;
        };
        const actions = el('div', { class: 'actions' });
        actions.append(button('edit', t('Edit'), t('Edit {0}', name), async () => edit(c.clientId)));
        if (confidential) {
          actions.append(button('rotate', t('Rotate secret'), t('Rotate the secret of {0}', name), async () => {
            if (!(await confirm(t('Give {0} a new secret? The current secret stops working at once.', name), t('Rotate the secret')))) return;
            const r = await api('POST', path(c) + ':rotateSecret', {}, true);
            put(r.oauthClient);
            showSecret(r.oauthClient, r.clientSecret);
            say(t('New secret for {0}. Copy it now: it will not be shown again.', name));
          }));
        }
        actions.append(button('disable', c.disabled ? t('Enable') : t('Disable'), c.disabled ? t('Enable {0}', name) : t('Disable {0}', name), async () => {
          if (!c.disabled && !(await confirm(t('Disable {0}? It can get no token until it is enabled again.', name), t('Disable')))) return;
          const r = await api('PATCH', path(c) + '?updateMask=disabled', { disabled: !c.disabled, etag: c.etag }, true);
          put(r.oauthClient || r);
          say(c.disabled ? t('{0} enabled.', name) : t('{0} disabled.', name));
        }));
        actions.append(button('delete', t('Delete'), t('Delete {0}', name), async () => {
          if (!(await confirm(t('Delete {0}? It can no longer authenticate, and this cannot be undone.', name), t('Delete')))) return;
          await api('DELETE', path(c), undefined, true);
          if (editing === c.clientId) stopEditing();
          rows.get(c.clientId).li.remove();
          rows.delete(c.clientId);
          $('#no-clients').hidden = rows.size > 0;
          say(t('{0} deleted.', name));
        }));
        li.append(details, actions);
        return li;
      }

      // put shows c in the list: in its row's place, or at the end.
      function put(c) {
        const li = item(c);
        const old = rows.get(c.clientId);
        if (old) old.li.replaceWith(li); else list.append(li);
        rows.set(c.clientId, { client: c, li });
        $('#no-clients').hidden = true;
      }

      function fill(c) {
        form.elements.display_name.value = c.displayName || '';
        for (const r of form.querySelectorAll('input[name="type"]')) r.checked = r.value === c.type;
        form.elements.redirect_uris.value = (c.redirectUris || []).join('\n');
        form.elements.post_logout_redirect_uris.value = (c.postLogoutRedirectUris || []).join('\n');
        for (const g of form.querySelectorAll('input[name="grant_types"]')) g.checked = (c.grantTypes || []).includes(g.value);
        form.elements.allowed_scopes.value = (c.allowedScopes || []).join(' ');
        form.elements.first_party.checked = !!c.firstParty;
      }

      function edit(id) {
        editing = id;
        clearErrors(form);
        fill(rows.get(id).client);
        // A client's type never changes.
        for (const r of form.querySelectorAll('input[name="type"]')) r.disabled = true;
        $('#client-form-title').textContent = t('Edit {0}', label(rows.get(id).client));
        form.querySelector('button[type="submit"]').textContent = t('Save the changes');
        $('#edit-cancel').hidden = false;
        form.elements.display_name.focus();
      }

      function stopEditing() {
        editing = null;
        form.reset();
        clearErrors(form);
        for (const r of form.querySelectorAll('input[name="type"]')) r.disabled = false;
        $('#client-form-title').textContent = t('Register a client');
        form.querySelector('button[type="submit"]').textContent = t('Register the client');
        $('#edit-cancel').hidden = true;
      }
      $('#edit-cancel').addEventListener('click', () => { stopEditing(); say(''); });

      // fromForm is the client the form describes, as the API reads it.
      function fromForm() {
        const lines = (name) => form.elements[name].value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
        const type = form.querySelector('input[name="type"]:checked');
        return {
          displayName: form.elements.display_name.value,
          type: type ? type.value : 'TYPE_UNSPECIFIED',
          redirectUris: lines('redirect_uris'),
          postLogoutRedirectUris: lines('post_logout_redirect_uris'),
          grantTypes: [...form.querySelectorAll('input[name="grant_types"]:checked')].map((g) => g.value),
          allowedScopes: form.elements.allowed_scopes.value.split(/[\s,]+/).filter(Boolean),
          firstParty: form.elements.first_party.checked,
        };
      }

      async function load() {
        const q = '?pageSize=50' + (nextPage ? '&pageToken=' + encodeURIComponent(nextPage) : '');
        const r = await api('GET', '/v1/oauthClients' + q, undefined, true);
        for (const c of r.oauthClients || []) put(c);
        nextPage = r.nextPageToken || '';
        more.hidden = !nextPage;
        $('#no-clients').hidden = rows.size > 0;
      }

      try {
        await load();
      } catch (err) {
        $('#forbidden').hidden = false;
        if (err.status !== 401 && err.status !== 403) say(err.message, true);
        return;
      }
      $('#admin').hidden = false;
      more.addEventListener('click', () => load().catch((err) => say(err.message, true)));

      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        say('');
        const submit = form.querySelector('button[type="submit"]');
        submit.disabled = true;
        try {
          const c = fromForm();
          if (editing) {
            const old = rows.get(editing).client;
            delete c.type;
            const mask = 'displayName,redirectUris,postLogoutRedirectUris,grantTypes,allowedScopes,firstParty';
            const r = await api('PATCH', path(old) + '?updateMask=' + mask, Object.assign(c, { etag: old.etag }), true);
            put(r.oauthClient);
            stopEditing();
            say(t('{0} saved.', label(r.oauthClient)));
          } else {
            const r = await api('POST', '/v1/oauthClients', c, true);
            put(r.oauthClient);
            stopEditing();
            if (r.clientSecret) {
              showSecret(r.oauthClient, r.clientSecret);
              say(t('{0} is registered. Copy its secret now: it will not be shown again.', label(r.oauthClient)));
            } else {
              say(t('{0} is registered, as a public client: it has no secret.', label(r.oauthClient)));
            }
          }
        } catch (err) {
          showError(form, err);
        } finally {
          submit.disabled = false;
        }
      });
    },
  };

  document.addEventListener('DOMContentLoaded', () => {
    // The script is here: the notice of the pages that need it goes.
    for (const e of document.querySelectorAll('[data-needs-script]')) e.remove();
    showTenant();
    const run = pages[document.body.dataset.page];
    // data-loaded marks the end of the page's first load: its sections
    // appear one after another, moving what is below them, and whoever
    // drives the page (a test's browser) waits for this before clicking.
    if (run) {
      Promise.resolve(run()).catch((err) => say(err.message || String(err), true))
        .finally(() => { document.body.dataset.loaded = 'true'; });
    }
  });
})();

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildWebviewHtml, contentSecurityPolicy, createNonce } from '../../src/host/webviewHtml';

test('the webview shell denies everything by default and allows scripts only by nonce', () => {
  const csp = contentSecurityPolicy('https://x.vscode-cdn.net', 'abc');
  assert.match(csp, /^default-src 'none';/);
  assert.match(csp, /script-src 'nonce-abc'$/);
  assert.doesNotMatch(csp, /unsafe-(inline|eval)/);
});

test('the script tag carries the nonce and attribute values are escaped', () => {
  const html = buildWebviewHtml({
    cspSource: 'https://x',
    scriptUri: 'https://x/a.js?q="1"',
    styleUri: 'https://x/a.css',
    title: '<Runs>',
    nonce: 'n0nce',
  });
  assert.match(html, /<script nonce="n0nce" src="https:\/\/x\/a.js\?q=&quot;1&quot;"><\/script>/);
  assert.match(html, /<title>&lt;Runs&gt;<\/title>/);
  assert.equal((html.match(/<script/g) ?? []).length, 1);
});

test('nonces are fresh', () => {
  assert.notEqual(createNonce(), createNonce());
  assert.ok(createNonce().length >= 24);
});

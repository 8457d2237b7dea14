// ESLint (flat config): typescript-eslint's recommended rules, plus the import boundaries between the rooms
// (docs/architecture.md, "Rooms"). `npm run lint`; `npm test` runs it first.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** `@typescript-eslint/no-restricted-imports`: `paths` are exact module names, `patterns` are regular expressions
 * over the import path, each with the message that says why. */
const restrict = ({ paths = [], patterns = [] }) => ['error', { paths, patterns }];
const modules = (names, message) => names.map((name) => ({ name, message }));
const VSCODE = 'vscode';

export default tseslint.config(
  {
    ignores: ['node_modules/', 'out/', 'dist/', '.vscode-test/', 'test-results/', 'bench/results/', '.scratch/', '**/*.d.ts'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Boundary code narrows `unknown` by hand; `any` is kept for the few places tfjs's types cannot follow.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Plain CommonJS scripts (bin, scripts, webpack, fixture generators).
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // ---- import boundaries ----
  {
    files: ['engine/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict({
        paths: modules([VSCODE], 'The engine runs without VS Code (CLI, engine process): no vscode import.'),
        patterns: [
          { regex: '(^|/)extension(/|$)', message: 'The engine must not import the extension host.' },
          { regex: '(^|/)webview(/|$)', message: 'The engine must not import webview code.' },
        ],
      }),
    },
  },
  {
    files: ['contract/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict({
        paths: modules([VSCODE, ...nodeBuiltins], 'contract/ is runtime-neutral: no Node or vscode import.'),
        patterns: [
          { regex: '(^|/)(extension|webview)(/|$)', message: 'contract/ is imported by every room and imports none of them.' },
          { regex: '(^|/)engine/', allowTypeImports: true, message: 'contract/ may use engine types only (import type).' },
        ],
      }),
    },
  },
  {
    files: ['webview/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict({
        paths: [
          ...modules([VSCODE], 'Webviews talk to the host by messages only.'),
          ...modules(nodeBuiltins, 'Webviews run in a browser: no Node modules.'),
        ],
        patterns: [
          { regex: '(^|/)engine/', allowTypeImports: true, message: 'Webviews may use engine types only (import type); the engine runs in its own process.' },
          { regex: '(^|/)extension/', allowTypeImports: true, message: 'Webviews may use extension types only (import type).' },
          { regex: '(^|/)contract/parse$', message: 'contract/parse compiles schemas (eval), which the webview CSP forbids; use the guards.' },
        ],
      }),
    },
  },
  {
    files: ['extension/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict({
        patterns: [
          {
            // The message contracts under webview/ (protocol.ts, analysisProtocol.ts, <view>/protocol.ts) are shared, and
            // so are the DOM-free shared modules: the one number/date formatter and the common view messages.
            regex: '(^|/)webview/(?!(protocol|analysisProtocol|[^/]+/protocol|shared/format|shared/messages)$)',
            allowTypeImports: true,
            message: 'The extension host imports only the webviews’ message contracts (protocol modules) at run time.',
          },
        ],
      }),
    },
  },
  {
    files: ['test/webview/**/*.ts', 'webview/**/*.ts'],
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
  },
);

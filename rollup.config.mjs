// Builds the browser snippet only; the Node half is compiled by `tsc -p tsconfig.node.json`.
import typescript from '@rollup/plugin-typescript';
import resolve from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';

const ts = (declarations) =>
  typescript({
    tsconfig: './tsconfig.browser.json',
    declaration: declarations,
    declarationDir: declarations ? 'dist/types' : undefined,
    outDir: 'dist',
    noEmitOnError: true,
  });

// Measured on the core (gzip -9): `inline: 1` (inline only simple functions; a called-once helper stays a named
// function, which compresses better), `unsafe_methods` (`m: function () {}` → `m() {}`) and `unsafe_proto`
// (`Object.prototype.hasOwnProperty` → `{}.hasOwnProperty`) save about 20 B, five passes about 13 B more; none
// changes what the code does here. Not `unsafe`: it turns String(x) into ""+x, which throws on a Symbol.
const minify = terser({
  ecma: 2021,
  compress: { passes: 5, inline: 1, unsafe_arrows: true, unsafe_methods: true, unsafe_proto: true, pure_getters: true },
  mangle: { properties: false },
  format: { comments: false },
});

/**
 * Build variants from one source, as Plausible builds its tracker: each <script> variant replaces
 * src/browser/build-flags.ts with its own constants, and rollup drops the code a `false` flag makes unreachable.
 */
const buildFlags = (flags) => ({
  name: 'build-flags',
  resolveId: (source) => (source == './build-flags.js' ? '\0build-flags' : null),
  load: (id) => (id == '\0build-flags' ? Object.entries(flags).map(([k, v]) => `export const ${k} = ${v};`).join('\n') : null),
});

/** A <script>/tag-manager build: installs window.klaviyoRelay and replays the stub queue. */
const scriptVariant = (file, flags) => ({
  input: 'src/browser/iife.ts',
  output: { file, format: 'iife', plugins: [minify] },
  // iife.ts exports a helper for its unit tests only; the page gets window.klaviyoRelay, not a named bundle export.
  onwarn: (warning, warn) => warning.code === 'MISSING_NAME_OPTION_FOR_IIFE_EXPORT' || warn(warning),
  plugins: [buildFlags(flags), resolve({ browser: true }), ts(false)],
});

export default [
  // The core, for every <script> site.
  scriptVariant('dist/klaviyo-relay.min.js', { WITH_DATA_LAYER: false }),
  // The core plus the GA4 dataLayer bridge, for tag-manager sites.
  scriptVariant('dist/klaviyo-relay.gtm.min.js', { WITH_DATA_LAYER: true }),
  {
    // Bundler build, with everything: `import { createRelay } from 'klaviyo-relay'`.
    input: 'src/browser/index.ts',
    output: { file: 'dist/klaviyo-relay.mjs', format: 'es' },
    external: ['idb-keyval', 'js-cookie'],
    plugins: [resolve({ browser: true }), ts(true)],
  },
];

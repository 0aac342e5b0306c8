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

const minify = terser({
  ecma: 2020,
  compress: { passes: 3, unsafe_arrows: true, pure_getters: true },
  mangle: { properties: false },
  format: { comments: false },
});

export default [
  {
    // <script> tag and tag-manager build: installs window.klaviyoRelay and replays the stub queue.
    input: 'src/browser/iife.ts',
    output: { file: 'dist/klaviyo-relay.min.js', format: 'iife', plugins: [minify] },
    // iife.ts exports a helper for its unit tests only; the page gets window.klaviyoRelay, not a named bundle export.
    onwarn: (warning, warn) => warning.code === 'MISSING_NAME_OPTION_FOR_IIFE_EXPORT' || warn(warning),
    plugins: [resolve({ browser: true }), ts(false)],
  },
  {
    // Bundler build: `import { createRelay } from 'klaviyo-relay'`.
    input: 'src/browser/index.ts',
    output: { file: 'dist/klaviyo-relay.mjs', format: 'es' },
    external: ['idb-keyval', 'js-cookie'],
    plugins: [resolve({ browser: true }), ts(true)],
  },
];

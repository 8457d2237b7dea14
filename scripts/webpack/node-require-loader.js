// webpack loader for the engine bundle: keeps Node's own `require` where webpack cannot do the job at build time.
//  - `require(<expression>)` (e.g. the optional native backends, `require(pkg)`) would become webpack's empty
//    context and always throw "Cannot find module";
//  - `require.resolve('x')` of an external package would become a webpack module id (a number), not a path.
// Both are rewritten to `__non_webpack_require__`, which webpack emits as Node's real `require` of dist/engine.js,
// so they resolve against the extension's node_modules at run time. Literal `require('x')` is left to webpack.
'use strict';
module.exports = function nodeRequireLoader(source) {
  return source
    .replace(/(?<![\w$.])require\.resolve\(/g, '__non_webpack_require__.resolve(')
    .replace(/(?<![\w$.])require\((?!\s*['"`])/g, '__non_webpack_require__(');
};

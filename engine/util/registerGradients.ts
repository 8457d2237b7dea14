/**
 * tfjs-core's CommonJS build ships no gradient functions (they live in ES modules that plain Node cannot
 * require); the umbrella package bundles them and registers them on the shared tfjs-core instance.
 * Import this module (for its side effect) before computing any gradient.
 */
import '@tensorflow/tfjs';

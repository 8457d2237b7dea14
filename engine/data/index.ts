/** engine/data: dataset readers, loading, batching and download. */
export type { Dataset } from './types';
export { imageBytes } from './types';
export { deriveSeed } from './seed';
export {
  loadDataset,
  resolveDataRoot,
  subsetIndices,
  embeddedMnistDir,
  DATASET_INFO,
  DATASET_FOLDERS,
  DEFAULT_DATA_DIR,
  DEBIAN_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
} from './load';
export type { LoadOptions } from './load';
export { BatchIterator, batchTensors, gatherImages, gatherLabels, gatherAugmented } from './batch';
export type { Batch, BatchIteratorOptions, BatchPosition, HostBatch, AugmentOptions } from './batch';
export { downloadDataset, isDownloadable, DOWNLOADS } from './download';
export type { DownloadOptions, DownloadResult, DownloadProgress, DownloadableDataset } from './download';
export { parseIdx, readIdxPair } from './idx';
export { parseCifarBatch, CIFAR10_CLASSES } from './cifar';
export { decodeImage, resizeRgb } from './image';
export { readTar } from './tar';

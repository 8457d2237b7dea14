/**
 * Checkpoint file formats of other tools (PyTorch, safetensors), read and written without Python and without
 * running anything from the file, so that models trained with the paper's reference code can be imported and
 * models trained here exported to it.
 *
 *   readTorchCheckpoint(file): Promise<PyValue>
 *       A `torch.save` file, zip (torch ≥ 1.6) or legacy (older, or _use_new_zipfile_serialization=False). Storages on any
 *       device tag (cpu, cuda:0…) are read; strides and offsets are honoured, so views come out contiguous.
 *       The pickle is read by a safe reader (pickle.ts): only tensor-rebuild, OrderedDict, torch.Size and
 *       numpy-scalar globals are allowed; anything else is CHECKPOINT_UNSAFE naming the global, and nothing
 *       from the file is executed. Damage gives CHECKPOINT_CORRUPT naming the file.
 *   writeTorchCheckpoint(file, tree): Promise<void>
 *       A zip `torch.load(file, weights_only=True)` reads. Maps and plain objects → dict, arrays → list,
 *       whole numbers → int (wrap in PyFloat for a float), HostTensor → torch.Tensor.
 *   readSafetensors(file) / writeSafetensors(file, tensors, metadata)
 *       The safetensors format; offsets and sizes are checked against the header.
 *
 * Values: Python dicts are Maps (keys of any type, order kept), lists and tuples are arrays, tensors are
 * HostTensor { dtype, shape, data } with data widened to an exact JS typed array (hostTensor.ts says how);
 * `dictGet(tree, 'state_dict', 'conv1.weight')` walks nested dicts.
 */
export { readTorchCheckpoint, parseTorchCheckpoint, writeTorchCheckpoint, PyFloat, type TorchWritable } from './torchCheckpoint';
export { readSafetensors, parseSafetensors, writeSafetensors, type SafetensorsContent } from './safetensors';
export { unpickle, PyGlobal, type PyValue, type PyDict, type PyKey, type UnpickleOptions } from './pickle';
export { hostTensor, isHostTensor, numel, toFloat32, DTYPE_BYTES, type HostDtype, type HostTensor, type HostArray } from './hostTensor';
export { dictGet, tensorsOf } from './tree';

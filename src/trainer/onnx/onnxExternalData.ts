/**
 * ONNX external data (onnx/docs/ExternalData.md): a protobuf message, hence a model file with its weights inside,
 * cannot pass 2 GiB, so big models keep their initializers in a second file beside the graph. Each moved tensor gets
 * `data_location: EXTERNAL` and `external_data` entries `location` (the file, relative to the model), `offset` and
 * `length` (bytes), and no raw_data. As onnx's `save_model(..., save_as_external_data=True,
 * all_tensors_to_one_file=True)` writes it: one file, tensors of at least 1024 bytes moved (onnx's size_threshold),
 * smaller ones (shapes, scalars) left inline. Each tensor starts at a multiple of 4096 bytes (zeros between), the
 * page size, so onnxruntime can map the file instead of copying it. Optimum names the file `model.onnx_data`
 * next to `onnx/model.onnx`, which is where transformers.js looks for it (`use_external_data_format`).
 */
import { onnx } from 'onnx-proto';

/** The data file's name for a model file: `model.onnx` → `model.onnx_data` (Optimum's and transformers.js' name). */
export const externalDataFileName = (modelFileName: string) => `${modelFileName}_data`;
/** Tensors smaller than this stay in the model file (onnx's convert_model_to_external_data default). */
export const externalDataSizeThreshold = 1024;
/** Every tensor's offset is a multiple of this (a memory page). */
export const externalDataAlignment = 4096;
/** A protobuf message, so an ONNX file with its weights inside, cannot reach 2 GiB. */
export const protobufLimitBytes = 2 ** 31;

export interface ExternalDataModel {
  /** The graph with the moved initializers pointing into the data file. */
  readonly model: Uint8Array;
  /** The data file's bytes. */
  readonly data: Uint8Array;
  /** How many initializers moved. */
  readonly moved: number;
}

/** Moves the initializers of the encoded model `modelBytes` into a data file named `location`. */
export function withExternalData(modelBytes: Uint8Array, location: string): ExternalDataModel {
  const model = onnx.ModelProto.decode(modelBytes);
  const { data, moved } = moveToExternalData(model, location);
  return { model: onnx.ModelProto.encode(model).finish(), data, moved };
}

/**
 * Moves the initializers of `model` (before it is encoded) into a data file named `location`, in place, and
 * returns that file's bytes: the way for a graph builder to write a model whose weights pass protobuf's 2 GiB.
 */
export function moveToExternalData(model: onnx.IModelProto, location: string): { data: Uint8Array; moved: number } {
  const placed: { tensor: onnx.ITensorProto; offset: number; raw: Uint8Array }[] = [];
  let end = 0;
  for (const tensor of model.graph?.initializer ?? []) {
    const raw = tensor.rawData;
    if (!raw || raw.length < externalDataSizeThreshold) continue;
    const offset = Math.ceil(end / externalDataAlignment) * externalDataAlignment;
    placed.push({ tensor, offset, raw });
    end = offset + raw.length;
  }
  const data = new Uint8Array(end);
  for (const { tensor, offset, raw } of placed) {
    data.set(raw, offset);
    tensor.rawData = null; // not written at all: the bytes live in the data file
    tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    tensor.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
  }
  return { data, moved: placed.length };
}

/**
 * TensorBoard `Event` protos → scalar values. The schema below is the subset of tensorboard's
 * tensorboard/compat/proto/{event,summary,tensor,tensor_shape,types}.proto the lens reads, with their field numbers;
 * every other field (graph_def, histo, image, …) is skipped by the decoder as an unknown field.
 *
 * Scalars come in two forms:
 * - `Summary.Value.simple_value` (a float32): what torch.utils.tensorboard's and tensorboardX's `add_scalar` write,
 *   and so what transformers' TensorBoardCallback writes for every logged metric;
 * - `Summary.Value.tensor`, a one-element DT_FLOAT or DT_DOUBLE tensor (in `tensor_content` or `float_val` /
 *   `double_val`), whose tag carries plugin "scalars": what TF2's `tf.summary.scalar` (and `add_scalar(…,
 *   new_style=True)`) write. A writer puts the `metadata` (and so the plugin name) only on a tag's first value in a
 *   file, so the plugin of each tag is remembered per file (`pluginByTag`).
 */
import { Root } from 'protobufjs/light';

const schema = {
  nested: {
    tensorboard: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['file_version', 'summary'] } },
          fields: {
            wall_time: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            file_version: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Value: {
              oneofs: { value: { oneof: ['simple_value', 'tensor'] } },
              fields: {
                tag: { type: 'string', id: 1 },
                simple_value: { type: 'float', id: 2 },
                tensor: { type: 'TensorProto', id: 8 },
                metadata: { type: 'SummaryMetadata', id: 9 },
              },
            },
          },
        },
        SummaryMetadata: {
          fields: { plugin_data: { type: 'PluginData', id: 1 } },
          nested: { PluginData: { fields: { plugin_name: { type: 'string', id: 1 } } } },
        },
        TensorProto: {
          fields: {
            dtype: { type: 'int32', id: 1 },
            tensor_shape: { type: 'TensorShapeProto', id: 2 },
            tensor_content: { type: 'bytes', id: 4 },
            float_val: { rule: 'repeated', type: 'float', id: 5 },
            double_val: { rule: 'repeated', type: 'double', id: 6 },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dim', id: 2 } },
          nested: { Dim: { fields: { size: { type: 'int64', id: 1 } } } },
        },
      },
    },
  },
};

const eventType = Root.fromJSON(schema).lookupType('tensorboard.Event');

/** tensorflow/core/framework/types.proto's DataType numbers the scalars plugin stores. */
const dtFloat = 1;
const dtDouble = 2;
const float32Bytes = 4;
const float64Bytes = 8;
/** The plugin name TF2 summary writers give scalar tensors (tensorboard/plugins/scalar/metadata.py). */
export const scalarsPluginName = 'scalars';

interface Int64Like {
  toNumber(): number;
}
type Int64 = number | Int64Like;

interface DecodedTensor {
  dtype?: number;
  tensor_shape?: { dim?: { size?: Int64 }[] };
  tensor_content?: Uint8Array;
  float_val?: number[];
  double_val?: number[];
}

interface DecodedValue {
  tag?: string;
  simple_value?: number;
  tensor?: DecodedTensor;
  metadata?: { plugin_data?: { plugin_name?: string } };
}

interface DecodedEvent {
  wall_time?: number;
  step?: Int64;
  file_version?: string;
  summary?: { value?: DecodedValue[] };
}

export interface ScalarValue {
  readonly tag: string;
  readonly value: number;
}

export interface DecodedScalars {
  readonly step: number;
  readonly wallTime: number;
  /** Set on a file's first event: `brain.Event:2` for every current writer. */
  readonly fileVersion?: string;
  readonly scalars: ScalarValue[];
  /** Values that claim to be scalars but cannot be read, as `tag "…": …`. */
  readonly problems: string[];
}

const has = (object: object, key: string) => Object.prototype.hasOwnProperty.call(object, key);
const toNumber = (value: Int64 | undefined) =>
  value === undefined ? 0 : typeof value === 'number' ? value : value.toNumber();

/**
 * The scalars of one serialized `Event`; throws (protobufjs's error) when the bytes are not an Event. `pluginByTag`
 * holds the plugin each tag named in its file so far and is updated with this event's metadata.
 */
export function decodeEventScalars(data: Uint8Array, pluginByTag: Map<string, string>): DecodedScalars {
  const event = eventType.decode(data) as unknown as DecodedEvent;
  const scalars: ScalarValue[] = [];
  const problems: string[] = [];
  for (const value of event.summary?.value ?? []) {
    const tag = value.tag ?? '';
    const plugin = value.metadata?.plugin_data?.plugin_name;
    if (plugin !== undefined && plugin !== '') pluginByTag.set(tag, plugin);
    if (has(value, 'simple_value')) scalars.push({ tag, value: value.simple_value as number });
    else if (value.tensor !== undefined && pluginByTag.get(tag) === scalarsPluginName) {
      const read = scalarOfTensor(value.tensor);
      if (typeof read === 'number') scalars.push({ tag, value: read });
      else problems.push(`tag ${JSON.stringify(tag)}: ${read}; value skipped`);
    }
  }
  const step = toNumber(event.step);
  return {
    step,
    wallTime: event.wall_time ?? 0,
    ...(has(event, 'file_version') ? { fileVersion: event.file_version } : {}),
    scalars,
    problems,
  };
}

/** The value of a one-element float32 / float64 tensor, or why it is not one. */
function scalarOfTensor(tensor: DecodedTensor): number | string {
  const elements = (tensor.tensor_shape?.dim ?? []).reduce((count, dim) => count * toNumber(dim.size), 1);
  if (elements !== 1) return `a scalar tensor must have one element, not ${elements}`;
  const dtype = tensor.dtype ?? 0;
  const content = tensor.tensor_content;
  const view = content && content.byteLength > 0 ? new DataView(content.buffer, content.byteOffset) : undefined;
  if (dtype === dtFloat) {
    if (view && content?.byteLength === float32Bytes) return view.getFloat32(0, true);
    if (tensor.float_val?.length === 1) return tensor.float_val[0];
  } else if (dtype === dtDouble) {
    if (view && content?.byteLength === float64Bytes) return view.getFloat64(0, true);
    if (tensor.double_val?.length === 1) return tensor.double_val[0];
  } else return `dtype ${dtype} is not DT_FLOAT (1) or DT_DOUBLE (2)`;
  return `a dtype ${dtype} tensor with ${content?.byteLength ?? 0} content bytes and no single value`;
}

/**
 * A small builder for ONNX graphs over onnx-proto's generated protobuf classes: named values,
 * nodes with attributes, float/int64 constants, and typed inputs/outputs with symbolic dimensions.
 * It writes IR 8 with opset 17 (the newest that onnxruntime-node 1.30 and onnx-proto 8 agree on, and
 * the first with LayerNormalization).
 */
import { onnx } from 'onnx-proto';

export const ONNX_OPSET = 17;
const IR_VERSION = 8;

/** A dimension: a fixed size, or a symbolic name shared by every value with that dimension. */
export type Dim = number | string;

type AttributeValue = number | number[] | string | { float: number };

const { DataType } = onnx.TensorProto;

function valueInfo(name: string, elementType: number, dims: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elementType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if (typeof value === 'object') return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.INT, i: value };
}

export class OnnxGraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;

  /** Adds a node and returns the names of its outputs (one per `outputCount`). */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue> = {},
    outputCount = 1,
  ): string[] {
    const id = this.counter++;
    const outputs = Array.from(
      { length: outputCount },
      (_, i) => `${opType.toLowerCase()}_${id}${outputCount > 1 ? `_${i}` : ''}`,
    );
    this.nodes.push({
      name: `${opType}_${id}`,
      opType,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return outputs;
  }

  /** A single-output node. */
  op1(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}): string {
    return this.op(opType, inputs, attributes)[0];
  }

  /** Renames a value so a graph output can carry a public name: an Identity node. */
  rename(value: string, name: string): string {
    this.nodes.push({ name: `Identity_${name}`, opType: 'Identity', input: [value], output: [name] });
    return name;
  }

  /** A float32 tensor stored in the model (a weight). */
  floatInitializer(name: string, dims: readonly number[], data: Float32Array): string {
    this.initializers.push({
      name,
      dataType: DataType.FLOAT,
      dims: [...dims],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /** A small int64 constant (shapes, axes, indices). */
  int64Constant(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = `const_i64_${this.counter++}`;
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dataType: DataType.INT64, dims: [...dims], rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /** A float32 scalar constant. */
  floatConstant(value: number): string {
    const name = `const_f32_${this.counter++}`;
    const data = Float32Array.of(value);
    this.initializers.push({ name, dataType: DataType.FLOAT, dims: [], rawData: new Uint8Array(data.buffer) });
    return name;
  }

  input(name: string, elementType: 'float32' | 'int64', dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elementType === 'float32' ? DataType.FLOAT : DataType.INT64, dims));
    return name;
  }

  output(name: string, elementType: 'float32' | 'int64', dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, elementType === 'float32' ? DataType.FLOAT : DataType.INT64, dims));
  }

  /** Serialises the model: a protobuf ModelProto that onnxruntime reads from bytes or a file. */
  encode(graphName: string, metadata: Record<string, string> = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'rlhf-lens',
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

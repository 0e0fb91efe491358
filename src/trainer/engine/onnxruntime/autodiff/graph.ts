/**
 * A differentiable ONNX graph: every node is recorded with its inputs, attributes and the STATIC shape
 * and element kind of each output, so `gradients()` (gradients.ts) can append the backward nodes to the
 * same graph with broadcasting undone by a ReduceSum over known axes. One graph is built per batch shape.
 *
 * Floats are float32 for training and float64 for finite-difference tests (every op used here has a
 * double kernel in onnxruntime's CPU provider). It writes IR 8 / opset 17, as the exporter does.
 */
import { onnx } from 'onnx-proto';

const OPSET = 17;
const IR_VERSION = 8;

export type FloatType = 'float32' | 'float64';
/** `float` is the graph's float type; comparisons give `bool`; indices, shapes and axes are `int64`. */
export type ElementKind = 'float' | 'int64' | 'bool';
export type Shape = readonly number[];
export type Attribute = number | number[] | string | { float: number };
export type Attributes = Readonly<Record<string, Attribute>>;

export interface GraphNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Attributes;
}

export interface ValueInfo {
  readonly shape: Shape;
  readonly kind: ElementKind;
}

const { DataType } = onnx.TensorProto;

export function elementCount(shape: Shape): number {
  return shape.reduce((product, d) => product * d, 1);
}

function attributeProto(name: string, value: Attribute): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if (typeof value === 'object') return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.INT, i: value };
}

/**
 * A value built from one input by a run of consecutive nodes, with a gradient rule of its own:
 * `gradients` applies `backward` to the value's gradient and skips the nodes inside (their composed
 * rules would take more nodes for the same derivative).
 */
export interface Composite {
  readonly input: string;
  /** Index in `nodes` of the run's first node; the run ends with the node that outputs the value. */
  readonly firstNode: number;
  /** ∂L/∂input from ∂L/∂value (nodes appended to the graph). */
  readonly backward: (dy: string) => string;
}

export class DiffGraph {
  readonly nodes: GraphNode[] = [];
  /** By output value (see `composite`). */
  readonly composites = new Map<string, Composite>();
  private readonly values = new Map<string, ValueInfo>();
  private readonly initializers: onnx.ITensorProto[] = [];
  /** The values of int64 constants, so rules can read axes and shapes back. */
  private readonly intConstants = new Map<string, readonly number[]>();
  private readonly constantCache = new Map<string, string>();
  private readonly graphInputs: string[] = [];
  private readonly graphOutputs: string[] = [];
  private counter = 0;

  constructor(readonly floatType: FloatType) {}

  /** The ONNX data type of this graph's floats (also Cast's `to`). */
  get floatDataType(): number {
    return this.floatType === 'float32' ? DataType.FLOAT : DataType.DOUBLE;
  }

  info(name: string): ValueInfo {
    const info = this.values.get(name);
    if (!info) throw new Error(`autodiff: unknown value "${name}"`);
    return info;
  }

  shape(name: string): Shape {
    return this.info(name).shape;
  }

  /** A graph input with a static shape. */
  input(name: string, shape: Shape, kind: ElementKind = 'float'): string {
    if (this.values.has(name)) throw new Error(`autodiff: value "${name}" already exists`);
    this.values.set(name, { shape: [...shape], kind });
    this.graphInputs.push(name);
    return name;
  }

  /** Marks a value as a graph output, under its own name or (through an Identity) a public one. */
  output(value: string, publicName?: string): string {
    const name = publicName && publicName !== value ? this.rename(value, publicName) : value;
    this.graphOutputs.push(name);
    return name;
  }

  private rename(value: string, name: string): string {
    this.nodes.push({ opType: 'Identity', inputs: [value], outputs: [name], attributes: {} });
    this.values.set(name, this.info(value));
    return name;
  }

  /** Appends a node; `outputs` gives each output's static shape and kind. Returns the output names. */
  node(opType: string, inputs: readonly string[], attributes: Attributes, outputs: readonly ValueInfo[]): string[] {
    for (const input of inputs) if (input !== '') this.info(input);
    const id = this.counter++;
    const names = outputs.map((_, i) => `${opType.toLowerCase()}_${id}${outputs.length > 1 ? `_${i}` : ''}`);
    names.forEach((name, i) => this.values.set(name, { shape: [...outputs[i].shape], kind: outputs[i].kind }));
    this.nodes.push({ opType, inputs: [...inputs], outputs: names, attributes });
    return names;
  }

  node1(opType: string, inputs: readonly string[], attributes: Attributes, output: ValueInfo): string {
    return this.node(opType, inputs, attributes, [output])[0];
  }

  /**
   * Records the nodes `build` appends (they must read nothing built before them but `input` and
   * constants, and only their last output may be used after them) as one composite whose gradient is
   * `backward` (given the build's intermediate values, which it may reuse).
   */
  composite<T>(
    input: string,
    build: () => { value: string; parts: T },
    backward: (dy: string, parts: T) => string,
  ): string {
    const firstNode = this.nodes.length;
    const { value, parts } = build();
    const last = this.nodes[this.nodes.length - 1];
    if (!last || last.outputs[0] !== value) throw new Error('autodiff: a composite must end with its value');
    this.composites.set(value, { input, firstNode, backward: (dy) => backward(dy, parts) });
    return value;
  }

  /** A float constant of the graph's float type (weights in tests, masks, scalars). */
  floatTensor(data: ArrayLike<number>, shape: Shape): string {
    if (data.length !== elementCount(shape)) throw new Error('autodiff: constant data does not match its shape');
    const name = `const_f_${this.counter++}`;
    const typed = this.floatType === 'float32' ? Float32Array.from(data) : Float64Array.from(data);
    this.initializers.push({
      name,
      dataType: this.floatDataType,
      dims: [...shape],
      rawData: new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength),
    });
    this.values.set(name, { shape: [...shape], kind: 'float' });
    return name;
  }

  /** A float scalar constant, shared by every use of the same value. */
  scalar(value: number): string {
    const key = `f:${value}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const name = this.floatTensor([value], []);
    this.constantCache.set(key, name);
    return name;
  }

  /** An int64 constant (axes, shapes, indices, pads), shared by every use of the same values. */
  int64(values: readonly number[], shape: Shape = [values.length]): string {
    const key = `i:${shape.join('x')}:${values.join(',')}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const name = `const_i64_${this.counter++}`;
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dataType: DataType.INT64, dims: [...shape], rawData: new Uint8Array(data.buffer) });
    this.values.set(name, { shape: [...shape], kind: 'int64' });
    this.intConstants.set(name, [...values]);
    this.constantCache.set(key, name);
    return name;
  }

  /** The values of an int64 constant made by `int64()` (rules read static axes this way). */
  intValues(name: string): readonly number[] {
    const values = this.intConstants.get(name);
    if (!values) throw new Error(`autodiff: "${name}" is not an int64 constant`);
    return values;
  }

  private valueInfoProto(name: string): onnx.IValueInfoProto {
    const { shape, kind } = this.info(name);
    const elemType = kind === 'float' ? this.floatDataType : kind === 'int64' ? DataType.INT64 : DataType.BOOL;
    return { name, type: { tensorType: { elemType, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
  }

  /** Serialises the model (protobuf ModelProto bytes for an InferenceSession). */
  encode(graphName = 'rlhf-lens-autodiff'): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'rlhf-lens',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: graphName,
        node: this.nodes.map((node, i) => ({
          name: `${node.opType}_n${i}`,
          opType: node.opType,
          input: [...node.inputs],
          output: [...node.outputs],
          attribute: Object.entries(node.attributes).map(([key, value]) => attributeProto(key, value)),
        })),
        initializer: this.initializers,
        input: this.graphInputs.map((name) => this.valueInfoProto(name)),
        output: this.graphOutputs.map((name) => this.valueInfoProto(name)),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

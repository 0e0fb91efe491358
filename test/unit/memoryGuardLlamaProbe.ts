/**
 * Run as a child process by memoryGuardLlama.test.ts: loads a Hugging Face Llama-family folder into the tfjs engine
 * on `backend` and runs two full fine-tuning steps (masked next-token loss, AdamW over every weight) on `batch`
 * sequences of `length` tokens. Prints, as JSON, the process's RSS growth from before the load to its peak, the
 * growth from the load alone, and on wasm the heap the steps grew to (a fresh wasm heap only grows). A child, so
 * that the peak is this model's alone.
 */
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { AdamW } from '../../src/trainer/engine/tfjs/adamW';
import { loadHfCausalLm } from '../../src/trainer/engine/tfjs/hfModel';
import { maskedNll } from '../../src/trainer/engine/tfjs/losses';
import { tf, type Tensor, type Variable } from '../../src/trainer/engine/tfjs/tfRuntime';
import { openHfWeights, readHfConfig } from '../../src/trainer/hf';

interface ProbeRequest {
  folder: string;
  backend: 'wasm' | 'cpu';
  batch: number;
  length: number;
}

async function probe({ folder, backend, batch, length }: ProbeRequest) {
  await selectBackend(backend);
  const architecture = await readHfConfig(folder);
  const baseline = process.memoryUsage().rss;
  const model = await loadHfCausalLm(await openHfWeights(folder, architecture));
  const loaded = process.memoryUsage().rss - baseline;
  const optimizer = new AdamW(model.weights, { adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8, weightDecay: 0.1 });
  const ids = tf.randomUniform([batch, length], 0, architecture.vocabSize, 'int32');
  const mask = tf.ones([batch, length]);
  const variables: Variable[] = [...model.weights.values()];
  for (let step = 0; step < 2; step++) {
    const { value, grads } = tf.variableGrads(
      () => maskedNll(model.forward(ids).logits, ids, mask) as Tensor as never,
      variables,
    );
    optimizer.apply(grads, 1e-3);
    value.dispose();
    for (const grad of Object.values(grads)) grad.dispose();
  }
  const peak = process.resourceUsage().maxRSS * 1024 - baseline; // maxRSS is in kilobytes
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm;
  return { loaded, peak, heap: wasm ? wasm.HEAPU8.buffer.byteLength : null, parameters: model.parameterCount };
}

probe(JSON.parse(process.argv[2]) as ProbeRequest).then((result) =>
  process.stdout.write(JSON.stringify(result) + '\n'),
);

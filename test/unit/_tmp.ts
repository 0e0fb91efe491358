import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
async function main() {
  const seq = process.argv.slice(2);
  for (const b of seq) {
    console.log('select', b);
    await selectBackend(b as never);
    const x = tf.matMul(tf.ones([8, 8]), tf.ones([8, 8]));
    console.log(b, tf.getBackend(), (await x.data())[0]);
  }
}
void main();

/**
 * One safetensors file on disk, read lazily: the header when opened, each tensor from its own byte range when
 * asked, so a multi-gigabyte model is never held whole (nor twice) in memory.
 */
import { open, type FileHandle } from 'node:fs/promises';
import {
  parseSafetensorsHeader,
  safetensorsHeaderSize,
  SafetensorsFormatError,
  tensorFromBytes,
  type SafetensorsHeader,
  type SafetensorsTensor,
  type SafetensorsTensorInfo,
} from '../../shared/safetensors';
import { UserError, userErrorFromFileSystem } from '../../shared/userError';

const sizeFieldBytes = 8;
/** One read call's most bytes: Node refuses reads of 2 GiB or more, and a big model's embedding can be larger. */
const maxReadBytes = 2 ** 30;

export interface LazySafetensorsFile {
  readonly file: string;
  readonly header: SafetensorsHeader;
  /** Tensor name → where its bytes are. */
  readonly infos: ReadonlyMap<string, SafetensorsTensorInfo>;
  read(name: string): Promise<SafetensorsTensor>;
}

/** Opens `file` and checks its header against its length; a damaged file is a UserError naming it. */
export async function openSafetensorsFile(file: string): Promise<LazySafetensorsFile> {
  const header = await withHandle(file, async (handle) => {
    const { size } = await handle.stat();
    const sizeField = await readExactly(handle, file, 0, Math.min(sizeFieldBytes, size));
    const headerSize = safetensorsHeaderSize(sizeField);
    const headerBytes = await readExactly(handle, file, 0, Math.min(sizeFieldBytes + headerSize, size));
    return parseSafetensorsHeader(headerBytes, size);
  });
  const infos = new Map(header.tensors.map((info) => [info.name, info]));
  return {
    file,
    header,
    infos,
    read: async (name) => {
      const info = infos.get(name);
      if (info === undefined) throw new UserError(`has no tensor ${JSON.stringify(name)}`, { file });
      return withHandle(file, async (handle) => {
        const raw = await readExactly(handle, file, header.dataStart + info.begin, info.end - info.begin);
        return tensorFromBytes(info, raw, true);
      });
    },
  };
}

async function withHandle<T>(file: string, use: (handle: FileHandle) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw userErrorFromFileSystem(error) ?? error;
  }
  try {
    return await use(handle);
  } catch (error) {
    if (error instanceof SafetensorsFormatError)
      throw new UserError(`is damaged: ${error.message}`, { file, hint: 'download or save the model again' });
    throw error;
  } finally {
    await handle.close();
  }
}

/** `length` bytes at `position`; fewer (the file shrank since its header was read) is a damaged file. */
async function readExactly(handle: FileHandle, file: string, position: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const chunk = Math.min(length - done, maxReadBytes);
    const { bytesRead } = await handle.read(bytes, done, chunk, position + done);
    if (bytesRead === 0)
      throw new UserError(`is damaged: it ended after ${position + done} bytes, before the tensor data`, { file });
    done += bytesRead;
  }
  return bytes;
}

/**
 * Dawn only prints (to stderr, from native code) why its Vulkan backend found nothing; the commonest cause
 * on Linux is a machine without the Vulkan loader. Looking for the library where the dynamic linker
 * would lets the adapter search say so in words a user can act on.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const loaderFile = 'libvulkan.so.1';
const systemLibraryDirs = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/lib/x86_64-linux-gnu',
  '/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/lib64',
  '/lib',
];

/** A sentence when Linux's Vulkan loader is nowhere the linker looks; undefined elsewhere or when present. */
export function missingVulkanLoader(
  platform: NodeJS.Platform = process.platform,
  libraryPath: string | undefined = process.env.LD_LIBRARY_PATH,
): string | undefined {
  if (platform !== 'linux') return undefined;
  const dirs = [...(libraryPath ?? '').split(':').filter((dir) => dir !== ''), ...systemLibraryDirs];
  if (dirs.some((dir) => existsSync(path.join(dir, loaderFile)))) return undefined;
  return `${loaderFile} not found: install the Vulkan loader (Debian: libvulkan1)`;
}

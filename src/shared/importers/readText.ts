/** A text file an importer needs, read as UTF-8; a missing file is a UserError that names it. */
import { readFile } from 'node:fs/promises';
import { UserError } from '../userError';

export async function readImportedFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UserError(`${what} is missing (moved or deleted while the lens read the run?)`, { file });
    throw error;
  }
}

/**
 * Workspace Trust: every path that starts a trainer — training, resuming, the Rank view's sampling
 * from a checkpoint or an ONNX folder, ONNX export — runs code on this machine that parses workspace
 * files (ONNX through native code), so it needs a trusted workspace. The trainer supervisor holds the
 * one gate; commands check early only to explain before asking the user anything. Free of `vscode`.
 */

/** Why a trainer cannot start here, said the same way by every command that would start one. */
export function trustExplanation(action: string): string {
  return (
    `RLHF Lens ${action} only in a trusted workspace: that runs a trainer process on this machine, which reads ` +
    `the files the workspace names (ONNX models through native code). Viewing runs, traces and preference files ` +
    `works without trust. To go on, trust this folder (Workspaces: Manage Workspace Trust).`
  );
}

/** Thrown by the trainer supervisor when asked to start a trainer in an untrusted workspace. */
export class UntrustedWorkspaceError extends Error {
  constructor(readonly label: string) {
    super(trustExplanation(`starts "${label}"`));
  }
}

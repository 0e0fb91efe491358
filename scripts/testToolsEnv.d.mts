// Types for scripts/testToolsEnv.mjs, imported by the TypeScript test harness.
export declare const CODE_SERVER_VERSION: string;
export declare function toolsCacheDir(env?: NodeJS.ProcessEnv): string;
export declare function codeServerDir(env?: NodeJS.ProcessEnv): string;
export declare function cleanInstallEnv(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;

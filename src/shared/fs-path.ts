// A path below a directory whose name is not valid UTF-8 can only be opened by its bytes.
export type FsPath = string | Buffer;

/**
 * Message type bytes, request codes and SQLSTATEs of the PostgreSQL v3 protocol.
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** Messages a frontend (client) sends. */
export const enum FrontendCode {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyFail = 0x66, // f
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  Password = 0x70, // p (also SASLInitialResponse, SASLResponse, GSSResponse)
}

/** Messages a backend (server) sends. */
export const enum BackendCode {
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NotificationResponse = 0x41, // A
  CommandComplete = 0x43, // C
  DataRow = 0x44, // D
  ErrorResponse = 0x45, // E
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  EmptyQueryResponse = 0x49, // I
  BackendKeyData = 0x4b, // K
  NoticeResponse = 0x4e, // N
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  RowDescription = 0x54, // T
  FunctionCallResponse = 0x56, // V
  CopyBothResponse = 0x57, // W
  ReadyForQuery = 0x5a, // Z
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  NegotiateProtocolVersion = 0x76, // v
}

/** Sub-codes of the Authentication ('R') message. */
export const enum AuthCode {
  Ok = 0,
  CleartextPassword = 3,
  MD5Password = 5,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** ReadyForQuery transaction status bytes. */
export const enum TxStatus {
  Idle = 0x49, // I
  InTransaction = 0x54, // T
  Failed = 0x45, // E
}

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103;
export const CANCEL_REQUEST_CODE = 80877102;
export const GSSENC_REQUEST_CODE = 80877104;

/** SQLSTATEs pgproxy itself reports. */
export const SqlState = {
  ProtocolViolation: '08P01',
  ConnectionFailure: '08006',
  ConnectionException: '08000',
  InvalidPassword: '28P01',
  InvalidAuthorization: '28000',
  TooManyConnections: '53300',
  CannotConnectNow: '57P03',
  AdminShutdown: '57P01',
  FeatureNotSupported: '0A000',
  InFailedTransaction: '25P02',
  QueryCanceled: '57014',
  InternalError: 'XX000',
  ProgramLimitExceeded: '54000',
  InvalidCatalogName: '3D000',
  InvalidSqlStatementName: '26000',
} as const;
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];

/**
 * The e-RS specification's descriptions of the attachment errors (A006 `responses/retrieveAttachment/422Response.yaml`,
 * A042 `r4/.../retrieveAttachment/422Response.yaml`: the same texts), used as the stand-in's diagnostics.
 */
export const ATTACHMENT_DIAGNOSTICS = {
  PENDING:
    'The file is being scanned and cannot be retrieved. Wait at least 5 minutes before checking its availability again.',
  THREATS_FOUND:
    'The file has been quarantined after detecting a threat and cannot be retrieved. Contact the organisation that uploaded the file to resolve the issue and get the information you need.',
  VALIDATION_FAILED:
    'The file has failed validation and cannot be retrieved. Contact the organisation that uploaded the file to resolve the issue and get the information you need.',
  FILE_SIZE_ERROR:
    'The file requested is larger than 5MB (5242880 bytes) so cannot be retrieved via this endpoint. Files larger than 5MB can be downloaded via the A042 endpoint or the e-RS web-based professional application.',
} as const;

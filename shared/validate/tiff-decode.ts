import * as UTIF from 'utif2';

/**
 * utif2's IFD reader with MakerNote parsing off: a MakerNote is a vendor blob utif2 reads as a further TIFF,
 * outside the structure walk (image-header.ts) that has already bounded every IFD it would follow. Call
 * checkBufferBeforeDecode first. utif2's typings omit the options argument its decode takes.
 */
const decode = UTIF.decode as unknown as (buffer: Buffer | ArrayBuffer, options: { parseMN: boolean; debug: boolean }) => UTIF.IFD[];

export function decodeTiffDirectories(buffer: Buffer | ArrayBuffer): UTIF.IFD[] {
  return decode(buffer, { parseMN: false, debug: false });
}

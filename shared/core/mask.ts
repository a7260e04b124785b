/** Replaces registered secrets in text with `***`, longest first so one secret inside another is fully hidden. */
export class SecretMasker {
  private secrets: string[] = [];

  add(value: string): void {
    // Multi-line secrets (PEM keys) are masked line by line too, since loggers split on newlines.
    for (const v of [value, ...value.split(/\r?\n/)]) {
      const s = v.trim();
      if (s.length >= 3 && !this.secrets.includes(s)) this.secrets.push(s);
    }
    this.secrets.sort((a, b) => b.length - a.length);
  }

  mask(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }
}

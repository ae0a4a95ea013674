// Media objects fetched with the device's token and shown through blob: URLs (the CSP allows
// img-src blob:). One URL per media id, revoked when the user signs out.
export class MediaCache {
  constructor(client) {
    this.client = client;
    this.urls = new Map();      // media id -> blob: URL
    this.loading = new Map();   // media id -> Promise<string>
    this.failed = new Set();
  }

  url(id) { return this.urls.get(id); }

  load(id) {
    if (this.urls.has(id)) return Promise.resolve(this.urls.get(id));
    if (!this.loading.has(id)) {
      const p = this.client.downloadMedia(id).then((blob) => {
        const url = URL.createObjectURL(blob);
        this.urls.set(id, url);
        return url;
      }).catch((err) => { this.failed.add(id); throw err; })
        .finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return this.loading.get(id);
  }

  // Saves a file: fetch with the token, then a temporary link with the download attribute.
  async save(id, name) {
    const url = await this.load(id);
    const a = document.createElement('a');
    a.href = url;
    a.download = name || 'file';
    document.body.append(a);
    a.click();
    a.remove();
  }

  clear() {
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
  }
}

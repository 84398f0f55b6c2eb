// The Cache Storage cache that keeps the page's model offline, for boot.js (imported)
// and sw.js (importScripts): the page asks the JS library to put the bundle it
// downloaded and checked there (`offlineCache`), and the service worker answers
// model requests from it and keeps it when it replaces its own cache.
globalThis.bertSentimentModelCache = 'bert-sentiment-models';

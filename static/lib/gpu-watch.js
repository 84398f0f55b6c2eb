// Watch for a lost WebGPU device (driver reset, GPU process crash, device.destroy()):
// the model checks `bertSentimentGpu.lost` before each WebGPU run and moves to the
// CPU engine instead of calling into a dead device. `devices` holds what was handed
// out, so that a test (or a page's own diagnostics) can reach them.
globalThis.bertSentimentGpu = { lost: null, devices: [] };
if (globalThis.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    globalThis.bertSentimentGpu.devices.push(device);
    device.lost.then((info) => {
      globalThis.bertSentimentGpu.lost = `${info.reason || 'unknown'}: ${info.message || 'device lost'}`;
    });
    return device;
  };
}

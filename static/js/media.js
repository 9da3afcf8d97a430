// Camera photos and location on the phone: photos are downscaled before they are stored (at most
// 1600 px on the long side, JPEG), which also drops EXIF (the GPS position is recorded on purpose,
// in the location field, not hidden in every picture).

export const MAX_SIDE = 1600;
const QUALITY = 0.8;

async function decode(file) {
  if (typeof createImageBitmap === "function") {
    try {
      return await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (_) { /* fall back to <img>, e.g. older Safari */ }
  }
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    await img.decode();
    return img;
  } finally {
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}

/** A JPEG Blob of the picture, at most maxSide px on its long side. Throws on an unreadable file. */
export async function downscaleImage(file, maxSide = MAX_SIDE, quality = QUALITY) {
  const image = await decode(file);
  const width = image.width || image.naturalWidth;
  const height = image.height || image.naturalHeight;
  if (!width || !height) throw new Error("unreadable image");
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(image, 0, 0, w, h);
  if (typeof image.close === "function") image.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
  if (!blob) throw new Error("could not encode image");
  return blob;
}

/** The phone's position {lat, lon, accuracy} (metres), or a rejected promise with a GeolocationPositionError. */
export function locate({ timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(Object.assign(new Error("no geolocation"), { code: 0 }));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({
        lat: Math.round(pos.coords.latitude * 1e6) / 1e6,
        lon: Math.round(pos.coords.longitude * 1e6) / 1e6,
        accuracy: Math.round(pos.coords.accuracy * 10) / 10,
      }),
      reject,
      { enableHighAccuracy: true, timeout, maximumAge: 0 },
    );
  });
}

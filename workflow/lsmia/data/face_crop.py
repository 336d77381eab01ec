"""High-resolution CelebA face crops from the in-the-wild images and their five landmarks.

The geometry is that of the HD-CelebA-Cropper the paper used (face factor 0.65, landmark factor
0.35, similarity alignment, bicubic, edge padding): a mean five-point face shape, centred on the
midpoint of its eyes and scaled by ``size · face_factor · landmark_factor``, is placed so that
the eye midpoint lands on pixel ``size − 1 − size // 2``; the least-squares similarity transform
from that template to the image's landmarks maps every output pixel to its source position, which
is sampled bicubically (PIL's kernel, no antialiasing, like the cropper's ``cv2.warpAffine``).
Source pixels beyond the image repeat its border.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Mean shape (left eye, right eye, nose, left mouth corner, right mouth corner), normalised to
# [-0.5, 0.5]: the default of the HD-CelebA-Cropper.
MEAN_FACE = np.array([[-0.46911814, -0.51348481],
                      [0.45750203, -0.53173911],
                      [-0.00499168, 0.06126145],
                      [-0.40616926, 0.46826089],
                      [0.42776873, 0.45444013]])
LANDMARK_FACTOR = 0.35


def template_landmarks(size: int, face_factor: float,
                       landmark_factor: float = LANDMARK_FACTOR) -> np.ndarray:
    """Where the five landmarks go in a ``size×size`` crop (pixel-index coordinates)."""
    eye_centre = (MEAN_FACE[0] + MEAN_FACE[1]) / 2.0
    return (MEAN_FACE - eye_centre) * (size * face_factor * landmark_factor) + (size - 1 - size // 2)


def similarity_transform(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """2×3 matrix ``[[a, −b, tx], [b, a, ty]]`` minimising ``Σ‖source − M·target‖²``."""
    rows = []
    for (x, y) in target:
        rows.append([x, -y, 1.0, 0.0])
        rows.append([y, x, 0.0, 1.0])
    solution, *_ = np.linalg.lstsq(np.asarray(rows), source.reshape(-1), rcond=None)
    a, b, tx, ty = solution
    return np.array([[a, -b, tx], [b, a, ty]])


def align_crop(image: Image.Image, landmarks: np.ndarray, size: int, face_factor: float = 0.65,
               landmark_factor: float = LANDMARK_FACTOR) -> np.ndarray:
    """uint8 ``size×size×3`` aligned face crop; ``landmarks`` is 5×2 (x, y) in ``image`` pixels."""
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    matrix = similarity_transform(template_landmarks(size, face_factor, landmark_factor), landmarks)
    corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]])
    reach = corners @ matrix.T  # source positions of the output corners
    width, height = image.size
    margin = 3  # bicubic support
    pad_left = max(0, int(np.ceil(-reach[:, 0].min())) + margin)
    pad_top = max(0, int(np.ceil(-reach[:, 1].min())) + margin)
    pad_right = max(0, int(np.ceil(reach[:, 0].max() - (width - 1))) + margin)
    pad_bottom = max(0, int(np.ceil(reach[:, 1].max() - (height - 1))) + margin)
    if pad_left or pad_top or pad_right or pad_bottom:
        padded = np.pad(np.asarray(image), ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)),
                        mode="edge")
        image = Image.fromarray(padded)
        matrix = matrix + np.array([[0, 0, pad_left], [0, 0, pad_top]])
    # PIL samples at pixel centres (index + 0.5) on both sides
    linear = matrix[:, :2]
    offset = matrix[:, 2] + 0.5 - linear @ np.array([0.5, 0.5])
    coefficients = (linear[0, 0], linear[0, 1], offset[0], linear[1, 0], linear[1, 1], offset[1])
    crop = image.transform((size, size), Image.Transform.AFFINE, coefficients,
                           resample=Image.Resampling.BICUBIC)
    return np.asarray(crop, dtype=np.uint8)

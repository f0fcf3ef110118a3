"""init_headless gives slicer-core what the Slicer application would: one scene, module logics, slicer.util support."""

import numpy as np
import slicer

from medai.slicer import init_headless


def test_one_scene_per_process_with_the_module_logics():
    scene = init_headless()
    assert init_headless() is scene
    assert slicer.mrmlScene is scene
    for name in ("volumes", "segmentations", "subjecthierarchy", "colors", "terminologies"):
        logic = getattr(slicer.modules, name).logic()
        assert logic.GetMRMLApplicationLogic() is not None, name
    assert slicer.modules.segmentations.logic().GetMRMLScene() is scene
    assert scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None  # default color nodes
    assert scene.GetSubjectHierarchyNode() is not None


def test_slicer_util_array_functions_work(colin27_crop):
    scene = init_headless()
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "util")
    slicer.util.updateVolumeFromArray(volume, colin27_crop.array)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), colin27_crop.array)

    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "util")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    segment_id = segmentation.GetSegmentation().AddEmptySegment("bright")  # needs the converter rules
    mask = (colin27_crop.array > 100).astype(np.uint8)
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation, segment_id, volume)
    np.testing.assert_array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume), mask)
